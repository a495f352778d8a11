"""Running a job's calls: in this process one after another, or as Ray tasks with their resources declared.

What the batch and the offline render share: every call is ``function(*args, board)`` (the board
takes its progress reports), the driver's progress line is drawn from the board, ``on_done`` runs on
the driver as each call finishes (a split file is joined as soon as its last piece is in, while
the others keep running). Ray runs a call again when its worker dies (``--retries``); a user error
inside a task comes back as its one line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from nstream.cluster.progress import Board, JobProgress, start_board
from nstream.errors import NStreamError

Done = Callable[[int, dict[str, Any]], None]


class ShownBoard:
    """A board in this process that draws the progress line at every report."""

    def __init__(self, progress: JobProgress) -> None:
        self.board, self.progress = Board(), progress

    def report(self, task: str, worker: str, done: int, made: int, since: float) -> None:
        self.board.report(task, worker, done, made, since)
        self.progress.show(self.board.snapshot())


def task_gpus(args: argparse.Namespace, device: str) -> float:
    """GPUs a task reserves: ``--task-gpus``, else one for a CUDA device and none for the CPU."""
    if args.task_gpus is not None:
        return args.task_gpus
    return 1.0 if device.startswith("cuda") else 0.0


def run_calls(function: Callable[..., dict[str, Any]], calls: Sequence[tuple[str, tuple[Any, ...]]],
              progress: JobProgress, args: argparse.Namespace, device: str, on_done: Done) -> list[dict[str, Any]]:
    """Each ``(name, args)`` of ``calls`` as ``function(*args, board)``: as Ray tasks when connected
    (``args.cluster``), else here in order; returns their results in the order they finished."""
    results: list[dict[str, Any]] = []

    def finished(index: int, result: dict[str, Any]) -> None:
        results.append(result)
        on_done(index, result)

    if not args.cluster:
        board = ShownBoard(progress)
        for index, (_, call_args) in enumerate(calls):
            finished(index, function(*call_args, board))
        progress.show(board.board.snapshot(), final=True)
    else:
        _on_ray(function, calls, progress, args, device, finished)
    return results


def _on_ray(function: Callable[..., dict[str, Any]], calls: Sequence[tuple[str, tuple[Any, ...]]],
            progress: JobProgress, args: argparse.Namespace, device: str, finished: Done) -> None:
    """Every call as a Ray task; the progress line redrawn twice a second from the board actor."""
    import ray

    board = start_board()
    task = ray.remote(max_retries=args.retries, retry_exceptions=False)(function)
    options = {"num_cpus": args.task_cpus, "num_gpus": task_gpus(args, device)}
    refs = {task.options(**options).remote(*call_args, board): index for index, (_, call_args) in enumerate(calls)}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            progress.show(ray.get(board.snapshot.remote()))
            for ref in ready:
                index = refs.pop(ref)
                finished(index, task_result(ref, calls[index][0]))
        progress.show(ray.get(board.snapshot.remote()), final=True)
    finally:
        for ref in refs:  # a failure or Ctrl-C: nothing keeps running for a driver that is gone
            ray.cancel(ref, force=True)


def task_result(ref: Any, name: str) -> dict[str, Any]:
    """The task's result; a user error inside it becomes one line, a dead worker (retries spent) too."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, NStreamError):
            raise NStreamError(str(exc.cause)) from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise NStreamError(f"{name}: its worker died and the retries are spent ({type(exc).__name__}); "
                           "run the same command again to resume") from None
