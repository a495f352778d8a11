"""``offline.py ... --cluster``: a Gatys–Ruder video render split into shots and chunks, run as Ray tasks.

The driver sets the render up once (:func:`nstream.optimize.render.prepare_video`: options checked,
content frames decoded into the work folder), finds the shots on those frames (the stream's
scene-cut test) and cuts shots longer than ``--chunk`` into chunks. Each span is a task that renders
its frames into the shared work folder with :meth:`VideoJob.render_frames`'s own code: every
finished frame on disk, nothing rendered twice, a killed worker's task resumed by Ray where it was.
The driver muxes the output with the input's timing and audio once every span is in.

A chunk that does not start a shot begins its chain ``--warmup`` frames early: those frames are
rendered (all passes) into ``warmup/<span>/``, so the first kept frame has a real history (its
start image and temporal loss come from a warped predecessor) instead of starting afresh, and the
output cross-fades from the chunk before to the warm-up frames over those frames (the two chains
never agree exactly; the fade spreads their difference over ``warm + 1`` frame pairs). Inside a
chunk multi-pass and long-term consistency work as on one machine, over the warm-up frames too;
across a seam only the forward chain is carried (by the warm-up), the backward passes of one chunk
never see the next. ``bench/cluster_bench.py seams`` measures what a seam costs.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nstream.errors import NStreamError
from nstream.optimize.video import Hooks
from nstream.optimize.workfolder import WorkFolder, frame_name

DEFAULT_WARMUP = 4  # frames: the worst seam pair comes within 15 % of an unchunked render's (docs/BENCHMARKS.md, "Cluster")


@dataclass(frozen=True)
class Span:
    """Frames [begin, end) kept, rendered from ``begin - warm`` on."""

    begin: int
    end: int
    warm: int = 0

    @property
    def key(self) -> str:
        return f"{self.begin:06d}-{self.end:06d}"

    @property
    def first(self) -> int:
        return self.begin - self.warm


def plan_spans(count: int, starts: list[int], chunk: int | None, warmup: int) -> list[Span]:
    """Shots from ``starts`` (first frames), each cut into chunks of at most ``chunk`` frames; a chunk
    that does not start its shot warms up on up to ``warmup`` frames of its own shot."""
    spans = []
    ends = starts[1:] + [count]
    for shot_begin, shot_end in zip(starts, ends, strict=True):
        size = chunk or shot_end - shot_begin
        for begin in range(shot_begin, shot_end, size):
            spans.append(Span(begin, min(begin + size, shot_end), min(warmup, begin - shot_begin)))
    return spans


def find_shots(work: WorkFolder, threshold: float | None) -> list[int]:
    """First frame of every shot of the stored content frames (histogram test of the live blend)."""
    from nstream.temporal.scenecut import SceneCutDetector

    detector = SceneCutDetector(threshold)
    starts = [0]
    for index in range(work.count()):
        if detector.is_cut(detector.distance(work.content(index))) and index:
            starts.append(index)
    return starts


class SpanFolder(WorkFolder):
    """The work folder as one span sees it: its warm-up frames live apart, in ``warmup/<span>/``."""

    def __init__(self, root: Path, span: Span, passes: int) -> None:
        super().__init__(root)
        self.span = span
        self.scratch = self.root / "warmup" / span.key
        if span.warm:
            for pass_index in range(passes):
                (self.scratch / f"pass{pass_index + 1}").mkdir(parents=True, exist_ok=True)

    def frame_path(self, pass_index: int, index: int) -> Path:
        if index < self.span.begin:
            return self.scratch / f"pass{pass_index + 1}" / frame_name(index)
        return super().frame_path(pass_index, index)


class _Reporter(Hooks):
    """Hooks that count kept frames finished (all passes) and tell the progress board."""

    def __init__(self, board: Any, key: str, label: str, span: Span, done: int) -> None:
        self.board, self.key, self.label, self.span = board, key, label, span
        self.done, self.made, self.since = done, 0, time.time()

    def frame_done(self, report: Any) -> None:
        if report.index >= self.span.begin:
            self.done += 1
            self.made += 1
        send = self.board.report.remote if hasattr(self.board.report, "remote") else self.board.report
        send(self.key, self.label, self.done, self.made, self.since)


def render_span(config: Any, span: Span, board: Any) -> dict[str, Any]:
    """Render one span into the shared work folder (a Ray task, or in this process); its figures."""
    from nstream.cluster.progress import worker_label
    from nstream.optimize.render import prepare_video
    from nstream.optimize.video import finished_frames, render_frames

    label = worker_label()
    job = prepare_video(replace(config, resume=True, max_frames=None))  # content is there: nothing decoded again
    work = SpanFolder(job.work.root, span, config.passes)
    (work.root / "pieces").mkdir(exist_ok=True)
    (work.root / "pieces" / f"{span.key}.worker").write_text(label + "\n")
    done = finished_frames(work, config.passes, span.begin, span.end)
    hooks = _Reporter(board, span.key, label, span, done)
    started = time.perf_counter()
    reports, complete = render_frames(work, job.transfer, job.open_flows(), job.settings(), hooks, span.first, span.end)
    if not complete:
        raise NStreamError(f"span {span.key} stopped before its end")
    return {"span": span.key, "made": hooks.made, "seconds": time.perf_counter() - started, "worker": label,
            "frame_seconds": [r.seconds for r in reports if r.index >= span.begin]}


def run_split(config: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The driver: set up, plan, run every span (Ray with ``--cluster``, else here), mux; what it did."""
    from nstream.cluster.connect import connected, precheck
    from nstream.cluster.progress import JobProgress
    from nstream.cluster.tasks import run_calls
    from nstream.optimize.config import output_kind
    from nstream.optimize.render import prepare_video
    from nstream.optimize.video import finished_frames

    if config.max_frames is not None:
        raise NStreamError("--max-frames stops a render on one machine; with --cluster or --shots stop it with Ctrl-C "
                           "(every finished frame is kept) instead")
    if args.chunk < 0 or args.warmup < 0:
        raise NStreamError(f"--chunk {args.chunk} / --warmup {args.warmup}: use 0 or more")
    if args.cluster:  # before the loss network is built and the content decoded
        precheck(args.cluster)
    job = prepare_video(config, warn=lambda text: print(f"warning: {text}", file=sys.stderr))
    starts = find_shots(job.work, None if args.no_scene_cuts else args.scene_cut)
    spans = plan_spans(job.count, starts, args.chunk or None, args.warmup)
    passes = config.passes
    todo = [s for s in spans if finished_frames(job.work, passes, s.begin, s.end) < (s.end - s.begin) * passes]
    total = job.count * passes
    progress = JobProgress(total=total, already=total - sum((s.end - s.begin) * passes for s in todo))
    print(f"{job.count} frames, {len(starts)} shot(s), {len(spans)} span(s); {len(todo)} to render", file=sys.stderr)
    for span in todo:  # what a span has finished already counts as done
        progress.already += finished_frames(job.work, passes, span.begin, span.end)
    calls = [(f"span {span.key}", (config, span)) for span in todo]
    with connected(args.cluster, args.num_cpus):
        results = run_calls(render_span, calls, progress, args, config.device, lambda index, result: None)
    write_crossfaded(job, spans, output_kind(job.output, still=False))
    print(f"wrote {job.output} ({job.count} frames, {job.width}x{job.height}); frames kept in {job.work.root}")
    return {"output": job.output, "frames": job.count, "spans": [s.key for s in spans], "results": results}


def seam_weight(spans: list[Span], index: int) -> tuple[Span | None, float]:
    """(the span whose warm-up covers frame ``index``, how much of that warm-up frame the output takes):
    over the warm-up the output fades from the chunk before (0) towards the chunk after (1), so the
    jump between the two chains is spread over ``warm + 1`` frame pairs instead of one."""
    for span in spans:
        if span.first <= index < span.begin:
            return span, (index - span.first + 1) / (span.warm + 1)
    return None, 0.0


def output_frame(work: WorkFolder, spans: list[Span], passes: int, index: int) -> Any:
    """Frame ``index`` of the output: the finished frame, cross-faded with a warm-up frame near a seam."""
    import numpy as np

    from nstream.optimize.workfolder import read_png

    image = read_png(work.frame_path(passes - 1, index))
    span, weight = seam_weight(spans, index)
    if span is None:
        return image
    warm = read_png(SpanFolder(work.root, span, passes).frame_path(passes - 1, index))
    mixed = (1.0 - weight) * image.astype(np.float32) + weight * warm.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def write_crossfaded(job: Any, spans: list[Span], kind: str) -> None:
    """Mux the output (the input's timing and audio) from the finished frames, seams cross-faded."""
    from nstream.colors import preserve_colors_uint8
    from nstream.optimize.mux import write_video

    c = job.config

    def frame(index: int) -> Any:
        image = output_frame(job.work, spans, c.passes, index)
        return preserve_colors_uint8(image, job.work.content(index)) if c.preserve_colors else image

    write_video(c.content, job.output, kind, frame, job.count, job.width, job.height, c.audio, c.crf)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """offline.py's ``cluster`` option group."""
    from nstream.temporal.scenecut import DEFAULT_CUT_THRESHOLD

    group = parser.add_argument_group("cluster (shots and chunks as Ray tasks)")
    group.add_argument("--cluster", metavar="ADDRESS", help="auto (a local Ray for this run), ray://HOST:PORT or "
                       "HOST:PORT (an existing cluster; the work folder must be on storage every node shares)")
    group.add_argument("--shots", action="store_true", help="render shot by shot (and chunk by chunk) in this "
                       "process, as --cluster would: the same frames, for a reference or a machine without Ray")
    group.add_argument("--chunk", type=int, default=0, metavar="N", help="cut shots longer than N frames into chunks "
                       "that render in parallel (default 0: whole shots)")
    group.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="W",
                       help="frames a chunk renders before its first kept frame and throws away")
    group.add_argument("--scene-cut", type=float, default=DEFAULT_CUT_THRESHOLD, metavar="T",
                       help="histogram distance that starts a new shot")
    group.add_argument("--no-scene-cuts", action="store_true", help="one shot (chunks only)")
    group.add_argument("--task-cpus", type=float, default=1.0, help="CPUs each task reserves")
    group.add_argument("--task-gpus", type=float, default=None, help="GPUs each task reserves (default 1 with "
                       "--device cuda*, else 0)")
    group.add_argument("--retries", type=int, default=3, help="times a task runs again after its worker died")
    group.add_argument("--num-cpus", type=int, help="--cluster auto: CPUs of the local Ray (default all)")
