"""Running a batch's pieces: in this process one after another, or as Ray tasks with their resources declared.

Ray re-runs a task whose worker died (``--retries``); the driver joins a split file as soon as its
last piece is in, while the other pieces keep running, and prints the whole job's progress.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nstream.cluster.batch import FileJob, Piece, assemble, plan, run_piece
from nstream.cluster.progress import Board, JobProgress, start_board
from nstream.errors import NStreamError


def run_batch(args: argparse.Namespace) -> dict[str, Any]:
    """Plan, connect (with ``--cluster``), run every piece not finished before, join, report."""
    from nstream.cli import stream_config

    base = stream_config(args)
    cluster = None
    if args.cluster:  # before planning: a bad address or missing extra fails at once
        from nstream.cluster.connect import connect, require_ray

        require_ray()
    jobs = plan(args, base)
    todo = [job for job in jobs if not job.finished()]
    pieces = [(job, piece) for job in todo for piece in job.pieces if not (job.split and piece.marker.exists())]
    total = sum(piece.frames for job in jobs for piece in job.pieces)
    already = total - sum(piece.frames for _, piece in pieces)
    progress = JobProgress(total=total, already=already)
    if already:
        print(f"resuming: {already} of {total} frames finished before", file=sys.stderr)
    if args.cluster:
        cluster = connect(args.cluster, num_cpus=args.num_cpus)
        print(cluster.describe(), file=sys.stderr)
    results: list[dict[str, Any]] = []
    for job in todo:  # every piece finished before, the driver stopped before joining them
        if job.split and _job_done(job, set()):
            assemble(job)
    try:
        if cluster is None:
            _run_here(pieces, progress, results)
        else:
            _run_on_ray(pieces, progress, results, args)
    except KeyboardInterrupt:
        raise KeyboardInterrupt("stopped: every finished frame is kept in the work folder; run the same command "
                                "again to resume") from None
    finally:
        if cluster is not None:
            cluster.shutdown()
    for job in jobs:
        print(f"wrote {job.output}")
    figures = {"files": len(jobs), "frames": total, "resumed_frames": already, "pieces": results,
               "outputs": [job.output for job in jobs]}
    if args.stats_json:
        import json
        from pathlib import Path

        Path(args.stats_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats_json).write_text(json.dumps(figures, indent=2))
    return figures


def _job_done(job: FileJob, finished: set[str]) -> bool:
    return all(piece.marker.exists() or piece.key in finished for piece in job.pieces)


def _run_here(pieces: list[tuple[FileJob, Piece]], progress: JobProgress, results: list[dict[str, Any]]) -> None:
    """Every piece in this process, in order: the single-process reference the cluster run must match."""
    board = Board()

    class Local:  # the board, with the progress line drawn at each report
        @staticmethod
        def report(task: str, worker: str, done: int, made: int, since: float) -> None:
            board.report(task, worker, done, made, since)
            progress.show(board.snapshot())

    for job, piece in pieces:
        results.append(run_piece(job.config, piece, Local))
        if job.split and _last_of(job, piece, pieces):
            assemble(job)
    progress.show(board.snapshot(), final=True)


def _last_of(job: FileJob, piece: Piece, pieces: list[tuple[FileJob, Piece]]) -> bool:
    """Whether ``piece`` is the last of ``job``'s pieces still to run."""
    return [p for j, p in pieces if j is job][-1] is piece


def _run_on_ray(pieces: list[tuple[FileJob, Piece]], progress: JobProgress, results: list[dict[str, Any]],
                args: argparse.Namespace) -> None:
    """Every piece as a Ray task; each split file joined on the driver once its pieces are in."""
    import ray

    board = start_board()
    task = ray.remote(max_retries=args.retries, retry_exceptions=False)(run_piece)
    refs: dict[Any, tuple[FileJob, Piece]] = {}
    for job, piece in pieces:
        options = {"num_cpus": args.task_cpus, "num_gpus": _task_gpus(args, job)}
        refs[task.options(**options).remote(job.config, piece, board)] = (job, piece)
    waiting = {id(job): job for job, _ in pieces}
    finished: set[str] = set()
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            progress.show(ray.get(board.snapshot.remote()))
            for ref in ready:
                job, piece = refs.pop(ref)
                results.append(_result(ref, piece))
                finished.add(piece.key)
                if job.split and id(job) in waiting and _job_done(job, finished):
                    del waiting[id(job)]
                    assemble(job)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
    progress.show(ray.get(board.snapshot.remote()), final=True)


def _task_gpus(args: argparse.Namespace, job: FileJob) -> float:
    if args.task_gpus is not None:
        return args.task_gpus
    return 1.0 if job.config.engine.device.startswith("cuda") else 0.0


def _result(ref: Any, piece: Piece) -> dict[str, Any]:
    """The task's figures; a user error inside it becomes one line, a dead worker (retries spent) too."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else None
        if isinstance(cause, NStreamError):
            raise NStreamError(str(cause)) from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
        raise NStreamError(f"{piece.key}: its worker died and the retries are spent ({type(exc).__name__}); "
                           "rerun to resume") from None
