"""The batch's driver: plan, connect, run the pieces not finished before (:mod:`.tasks`), join split files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nstream.cluster.batch import assemble, plan, run_piece
from nstream.cluster.connect import connected, precheck
from nstream.cluster.progress import JobProgress
from nstream.cluster.tasks import run_calls


def run_batch(args: argparse.Namespace) -> dict[str, Any]:
    """Plan, connect (with ``--cluster``), run every piece not finished before, join, report."""
    from nstream.cli import stream_config

    base = stream_config(args)
    if args.cluster:  # before planning: a missing extra or a dead address fails at once
        precheck(args.cluster)
    jobs = plan(args, base)
    todo = [job for job in jobs if not job.finished()]
    pieces = [(job, piece) for job in todo for piece in job.pieces if not (job.split and piece.marker.exists())]
    total = sum(piece.frames for job in jobs for piece in job.pieces)
    already = total - sum(piece.frames for _, piece in pieces)
    progress = JobProgress(total=total, already=already)
    if already:
        print(f"resuming: {already} of {total} frames finished before", file=sys.stderr)
    for job in todo:  # every piece finished before, the driver stopped before joining them
        if job.split and all(piece.marker.exists() for piece in job.pieces):
            assemble(job)
    left = {id(job): sum(1 for j, _ in pieces if j is job) for job in todo}

    def piece_done(index: int, _result: dict[str, Any]) -> None:
        job = pieces[index][0]
        left[id(job)] -= 1
        if job.split and not left[id(job)]:  # its last piece is in: join it while the others run
            assemble(job)

    calls = [(piece.key, (job.config, piece)) for job, piece in pieces]
    try:
        with connected(args.cluster, args.num_cpus):
            results = run_calls(run_piece, calls, progress, args, base.engine.device, piece_done)
    except KeyboardInterrupt:
        raise KeyboardInterrupt("stopped: every finished frame is kept in the work folder; run the same command "
                                "again to resume") from None
    for job in jobs:
        print(f"wrote {job.output}")
    figures = {"files": len(jobs), "frames": total, "resumed_frames": already, "pieces": results,
               "outputs": [job.output for job in jobs]}
    if args.stats_json:
        _write_json(args.stats_json, figures)
    return figures


def _write_json(path: str, figures: dict[str, Any]) -> None:
    import json
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(figures, indent=2))
