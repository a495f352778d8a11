"""Progress bars for long work: rich on a terminal, a plain line now and then elsewhere."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def step_progress(
    label: str, total: int | None, completed: int = 0, enabled: bool = True, every_s: float = 10.0
) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(detail)``, to be called once per finished step."""
    if not enabled:
        yield lambda detail="": None
        return
    if sys.stderr.isatty():
        columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[detail]}"))
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(label, total=total, completed=completed, detail="")
            yield lambda detail="": progress.update(task, advance=1, detail=detail)
        return
    state = {"done": completed, "last": 0.0}

    def advance(detail: str = "") -> None:
        state["done"] += 1
        now = time.monotonic()
        if now - state["last"] >= every_s or state["done"] == total:
            state["last"] = now
            of = f"/{total}" if total else ""
            print(f"{label}: {state['done']}{of} {detail}", file=sys.stderr, flush=True)

    yield advance
