"""Views over :class:`~nstream.stats.PipelineStats`: a live rich dashboard on a terminal, a plain
progress line elsewhere, and the closing summary. Views only read the stats; they never touch
the work."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table


def temporal_line(snapshot: dict[str, Any]) -> str:
    """The blend at a glance: setting, flow time, history resets; empty when blending is off."""
    setting = snapshot.get("temporal")
    if not setting or setting == "off":
        return ""
    parts = [setting]
    if snapshot.get("flow_ms") is not None:
        parts.append(f"flow {snapshot['flow_ms']:.1f} ms")
    parts.append(f"scene cuts {snapshot.get('scene_cuts', 0)}")
    parts.append(f"flow resets {snapshot.get('flow_resets', 0)}")
    return "   ".join(parts)


def render(snapshot: dict[str, Any]) -> Panel:
    stages = Table(box=None, expand=False, pad_edge=False)
    for column in ("stage", "fps", "ms/frame", "frames"):
        stages.add_column(column, justify="right" if column != "stage" else "left")
    for name, stage in snapshot["stages"].items():
        stages.add_row(name, f"{stage['fps_now']:.1f}", f"{stage['mean_ms']:.1f}", str(stage["frames"]))
    lat = snapshot["latency_ms"]
    facts = Table.grid(padding=(0, 2))
    engine = f"{snapshot.get('engine', '?')} ({snapshot.get('precision', '?')}) on {snapshot.get('device', '?')}"
    if snapshot.get("workers", 1) > 1:
        engine += f", {snapshot['workers']} frames at once"
    if snapshot.get("engine_reason"):
        engine += f"  [dim]{snapshot['engine_reason']}[/dim]"
    facts.add_row("engine", engine)
    facts.add_row("video", f"{snapshot.get('resolution', '?')} from {snapshot.get('input', '?')}")
    if snapshot.get("network"):
        facts.add_row("network", str(snapshot["network"]))
    styles = snapshot.get("styles")
    if styles:
        current = snapshot.get("style")
        facts.add_row("styles", "  ".join(f"[reverse]{i} {name}[/reverse]" if name == current else f"{i} {name}"
                                          for i, name in enumerate(styles, 1))
                      + "   [dim](n/p, 1-9 in the window; SIGUSR1: next)[/dim]")
    facts.add_row("latency", f"p50 {lat['p50']:.0f} ms   p95 {lat['p95']:.0f} ms   max {lat['max']:.0f} ms")
    facts.add_row("queues", "   ".join(f"{k} {v}" for k, v in snapshot["queues"].items()))
    facts.add_row("frames", f"in {snapshot['frames_in']}   out {snapshot['frames_out']}   dropped {snapshot['dropped']}"
                  + (f"   unblended {snapshot['unblended']}" if snapshot.get("unblended") else ""))
    temporal = temporal_line(snapshot)
    if temporal:
        facts.add_row("temporal", temporal)
    facts.add_row("overall", f"{snapshot['fps']:.1f} fps over {snapshot['elapsed_s']:.0f} s")
    parts: list[Any] = [facts, stages]
    total = snapshot.get("frame_count")
    if total and not snapshot.get("live"):
        bar = Table.grid(padding=(0, 2))
        bar.add_row(ProgressBar(total=total, completed=min(snapshot["frames_out"], total), width=50),
                    f"{snapshot['frames_out']}/{total}", _left(snapshot) or "")
        parts.append(bar)
    return Panel(Group(*parts), title=f"nstream · {snapshot.get('style', '')}", expand=False)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _left(snapshot: dict[str, Any]) -> str | None:
    """Time left at the rate so far ("0:42 left"), where the total is known and frames have gone out."""
    total, done, elapsed = snapshot.get("frame_count"), snapshot["frames_out"], snapshot["elapsed_s"]
    if not total or snapshot.get("live") or not done:
        return None
    return f"{_clock(max(0, total - done) * elapsed / done)} left"


def progress_line(snapshot: dict[str, Any]) -> str:
    total = snapshot.get("frame_count")
    known = bool(total) and not snapshot.get("live")
    of = f"/{total}" if known else ""
    lat = snapshot["latency_ms"]
    left = _left(snapshot)
    return (f"frames {snapshot['frames_out']}{of}" + (f" ({100 * snapshot['frames_out'] / total:.0f} %, {left})"
                                                      if known and left else "")
            + f"  {snapshot['fps']:.1f} fps  "
            f"latency p50 {lat['p50']:.0f} ms p95 {lat['p95']:.0f} ms  dropped {snapshot['dropped']}")


def end_warnings(snapshot: dict[str, Any]) -> list[str]:
    """Lines to warn with at the end of a run that did not take in the whole input (besides the
    source's own warnings, which say why an input fell short)."""
    if snapshot.get("interrupted"):
        return [f"interrupted (Ctrl-C or SIGTERM) after {snapshot['frames_out']} frames: the outputs hold those "
                "frames and are finalized"]
    return []


def summary(snapshot: dict[str, Any]) -> str:
    lat = snapshot["latency_ms"]
    stage_ms = ", ".join(f"{name} {s['mean_ms']:.1f} ms" for name, s in snapshot["stages"].items())
    if snapshot.get("kind") == "image":  # one picture: no rates, no latency, no temporal settings
        return f"done: 1 image in {snapshot['elapsed_s']:.1f} s; {stage_ms}"
    temporal = temporal_line(snapshot)
    head = "done"
    if snapshot.get("interrupted"):
        head = "interrupted"
    elif snapshot.get("truncated"):
        head = "done, input truncated"
    return (f"{head}: {_count(snapshot['frames_out'], 'frame')} out of {snapshot['frames_in']} in "
            f"{snapshot['elapsed_s']:.1f} s "
            f"({snapshot['fps']:.1f} fps), dropped {snapshot['dropped']}, latency p50 {lat['p50']:.0f} ms "
            f"p95 {lat['p95']:.0f} ms; per frame: {stage_ms}" + (f"; temporal: {temporal}" if temporal else "")
            + (f"; style {snapshot.get('style')} after {_count(snapshot.get('style_switches', 0), 'switch')}"
               if snapshot.get("styles") else ""))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def watch(snapshot: Callable[[], dict[str, Any]], running: Callable[[], bool], mode: str = "auto",
          tick: Callable[[], None] = lambda: None, refresh_s: float = 0.25, line_every_s: float = 2.0,
          tick_s: float = 0.015) -> None:
    """Show progress until ``running()`` is false, calling ``tick`` (GUI pumping) every ``tick_s``.

    mode: auto (rich on a terminal, plain lines elsewhere), rich, plain or off.
    """
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "plain"
    every = refresh_s if mode == "rich" else line_every_s
    live = Live(render(snapshot()), console=Console(), refresh_per_second=4) if mode == "rich" else None
    if live is not None:
        live.start()
    try:
        last, shown = time.monotonic(), None
        while running():
            tick()
            time.sleep(tick_s)
            if time.monotonic() - last >= every:
                last = time.monotonic()
                if live is not None:
                    live.update(render(snapshot()))
                elif mode == "plain":
                    current = snapshot()
                    progress = (current["frames_out"], current["dropped"])
                    if progress != shown:  # on change only: a stalled run does not repeat itself
                        shown = progress
                        print(progress_line(current), flush=True)
        tick()
    finally:
        if live is not None:
            live.update(render(snapshot()))
            live.stop()
