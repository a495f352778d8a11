"""What a render shows while it works and when it ends.

A view over the renderer's hooks, never mixed into the work: on a terminal, two rich bars (frames,
and the current frame's iterations with its loss terms); elsewhere (logs, CI, pipes) a plain line
per finished frame and one every ``every_s`` seconds during long frames.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from nstream.optimize.video import FrameReport, Hooks

TERM_ORDER = ("total", "content", "style", "tv", "temporal")


def format_terms(terms: dict[str, float]) -> str:
    """``loss 0.12 (content 0.03 style 0.002 ...)`` in a fixed order."""
    parts = [f"{k} {terms[k]:.3g}" for k in TERM_ORDER[1:] if k in terms]
    return f"loss {terms.get('total', float('nan')):.4g} ({' '.join(parts)})" if terms else ""


class RenderView(Hooks):
    """Progress for a render of ``total`` frames x ``passes``; use as a context manager."""

    def __init__(self, total: int, passes: int = 1, enabled: bool = True, every_s: float = 10.0, stream: Any = None) -> None:
        self.total, self.passes = total, passes
        self.enabled = enabled
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.rich = enabled and self.stream.isatty()
        self.progress: Any = None
        self.frames_task = self.iter_task = None
        self.current = ""
        self.iterations = 0
        self.last_line = 0.0

    def __enter__(self) -> RenderView:
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
                                     console=Console(file=self.stream))
            self.progress.__enter__()
            self.frames_task = self.progress.add_task("frames", total=self.total * self.passes, detail="")
            self.iter_task = self.progress.add_task("iterations", total=None, detail="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
            self.progress = None

    def _print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def resumed(self, count: int) -> None:
        if self.progress is not None:
            self.progress.update(self.frames_task, advance=count)
        print(f"resuming: {count} finished frame(s) found in the work folder, not recomputed", file=self.stream, flush=True)

    def pass_started(self, pass_index: int, passes: int, todo: int, total: int) -> None:
        if passes > 1 and todo:
            direction = "backward" if pass_index % 2 else "forward"
            self._print(f"pass {pass_index + 1}/{passes} ({direction}): {todo} of {total} frames to do")

    def frame_started(self, pass_index: int, index: int, iterations: int) -> None:
        self.current = f"frame {index + 1}/{self.total}" + (f" pass {pass_index + 1}" if self.passes > 1 else "")
        self.iterations = iterations
        self.last_line = time.monotonic()
        if self.progress is not None:
            self.progress.reset(self.iter_task, total=iterations, description=self.current, detail="")

    def step(self, iteration: int, terms: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.update(self.iter_task, completed=iteration, detail=format_terms(terms))
        elif self.enabled and time.monotonic() - self.last_line >= self.every_s:
            self.last_line = time.monotonic()
            self._print(f"{self.current}: iteration {iteration}/{self.iterations} {format_terms(terms)}")

    def frame_done(self, report: FrameReport) -> None:
        how = {"converged": ", converged", "diverged": ", stopped: loss not finite"}.get(report.stopped, "")
        line = (f"{self.current}: {report.iterations} iterations{how}, {report.seconds:.1f} s, "
                f"{format_terms(report.terms)}")
        if self.progress is not None:
            self.progress.update(self.frames_task, advance=1)
            self.progress.console.print(line)
        else:
            self._print(line)


def summary(reports: Sequence[FrameReport], resumed: int, seconds: float, flow_seconds: float = 0.0) -> str:
    """The closing lines: frames done and resumed, time per frame and per iteration, mean final losses."""
    if not reports:
        return f"nothing to compute: all {resumed} frame(s) were already finished ({seconds:.1f} s)"
    frames = len(reports)
    iterations = sum(r.iterations for r in reports)
    optimizing = sum(r.seconds for r in reports)
    keys = [k for k in TERM_ORDER if any(k in r.terms for r in reports)]
    mean = {k: sum(r.terms.get(k, 0.0) for r in reports) / frames for k in keys}
    first = {k: sum(r.first_terms.get(k, 0.0) for r in reports) / frames for k in keys}
    lines = [f"done: {frames} frame(s) in {seconds:.1f} s" + (f" ({resumed} resumed from the work folder)" if resumed else ""),
             f"  {optimizing / frames:.2f} s per frame, {optimizing / max(1, iterations) * 1000:.0f} ms per iteration, "
             f"{iterations / frames:.0f} iterations per frame" + (f"; flow {flow_seconds:.1f} s" if flow_seconds else ""),
             f"  mean loss at start {format_terms(first)}",
             f"  mean loss at end   {format_terms(mean)}"]
    return "\n".join(lines)
