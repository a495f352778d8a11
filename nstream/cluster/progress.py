"""Whole-job progress: frames done of the total, each worker's rate and the time left.

Workers report ``(task, worker, frames done in that task)`` to one small actor (no CPU reserved);
the driver polls it and prints a line, in place on a terminal and every few seconds elsewhere. A
task that is retried after its worker died reports from 0 again, so done frames never count twice.
The view (:func:`format_line`) only reads a snapshot and never touches the work.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


class Board:
    """The actor's state: latest count per task; per worker, frames it made and since when."""

    def __init__(self) -> None:
        self.tasks: dict[str, tuple[str, int]] = {}
        self.workers: dict[str, dict[str, Any]] = {}

    def report(self, task: str, worker: str, done: int, made: int, since: float) -> None:
        """``task`` has ``done`` frames finished, ``made`` of them by ``worker`` (node:pid) since ``since``."""
        self.tasks[task] = (worker, done)
        entry = self.workers.setdefault(worker, {"since": since, "made": {}, "last": since})
        entry["since"] = min(entry["since"], since)
        entry["made"][task] = made
        entry["last"] = time.time()

    def snapshot(self) -> dict[str, Any]:
        workers = {name: [w["since"], sum(w["made"].values()), w["last"]] for name, w in self.workers.items()}
        return {"tasks": dict(self.tasks), "workers": workers, "now": time.time()}


def start_board() -> Any:
    """The progress actor on the cluster (0 CPUs: it must never wait for a free core)."""
    import ray

    return ray.remote(num_cpus=0)(Board).remote()


def worker_label() -> str:
    """This process as ``node-ip:pid``, the name its rate is shown under."""
    import os

    try:
        import ray

        node = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - a label only
        node = "local"
    return f"{node}:{os.getpid()}"


@dataclass
class JobProgress:
    """The driver's view: ``total`` frames, ``already`` of them finished by an earlier run."""

    total: int
    already: int = 0
    started: float = field(default_factory=time.time)
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    last_print: float = 0.0

    def done(self, snapshot: dict[str, Any]) -> int:
        return self.already + sum(done for _, done in snapshot["tasks"].values())

    def show(self, snapshot: dict[str, Any], final: bool = False, every_s: float = 5.0) -> None:
        """Print the line: in place on a terminal, at most every ``every_s`` seconds elsewhere."""
        tty = self.stream.isatty()
        now = time.time()
        if not final and not tty and now - self.last_print < every_s:
            return
        self.last_print = now
        line = format_line(self.done(snapshot), self.total, snapshot, now - self.started, self.already)
        self.stream.write(("\r" + line.ljust(100) if tty else line) + ("\n" if final or not tty else ""))
        self.stream.flush()


def format_line(done: int, total: int, snapshot: dict[str, Any], elapsed: float, already: int = 0) -> str:
    """``frames 120/500 (24%) | 2 workers: 10.0.0.5:811 4.1 f/s, ... | 7.9 f/s | ETA 48s``."""
    rates = []
    for worker, (first, frames, last) in sorted(snapshot["workers"].items()):
        span = max(last - first, 1e-6)
        rates.append((worker, frames / span if frames else 0.0))
    fresh = done - already
    overall = fresh / elapsed if elapsed > 0 else 0.0
    percent = 100.0 * done / total if total else 100.0
    shown = ", ".join(f"{worker} {rate:.1f} f/s" for worker, rate in rates[:4]) + (" ..." if len(rates) > 4 else "")
    eta = (total - done) / overall if overall > 0 else None
    parts = [f"frames {done}/{total} ({percent:.0f}%)", f"{len(rates)} worker(s): {shown}" if rates else "waiting for workers",
             f"{overall:.1f} f/s", f"ETA {format_seconds(eta)}" if eta is not None and done < total else ""]
    return " | ".join(part for part in parts if part)


def format_seconds(seconds: float | None) -> str:
    """``48s``, ``3m05s``, ``2h10m``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
