"""Video the Ruder et al. (2016) way, frame by frame into a work folder (:mod:`.workfolder`).

Ruder's recipe, as implemented here:

- start image: the previous result warped by the flow (``prev-warped``); where the mask says
  the warp cannot be trusted (disocclusions, motion boundaries) the content frame fills in;
- temporal loss: per-pixel masked squared distance to the warped earlier results, over the
  frames ``long_term`` back (default 1; ``1,2,4`` for long-term consistency), weighted so a pixel
  counts only for the closest frame where it is visible (:func:`~.losses.long_term_weights`);
- multi-pass: later passes run backward, forward, ... over the sequence; each frame starts from
  the blend ``d*c*warp(neighbour) + (1 - d + d*(1 - c))*own previous result`` (Ruder eq. 10,
  d = ``pass_blend``) with the temporal loss towards the frames already done in this pass.

:func:`render_frames` renders any span ``[start, stop)`` as a sequence of its own: a shot between
scene cuts, the unit of work a cluster worker takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nstream.optimize.losses import long_term_weights
from nstream.optimize.transfer import Temporal, Transfer, fresh_start
from nstream.optimize.workfolder import FlowCache, WorkFolder, read_png, write_png

WARPED_STARTS = ("prev-warped", "stylized")  # later frames start from the warped previous result


@dataclass
class VideoSettings:
    """The Ruder-specific choices; the per-frame optimization lives in the Transfer."""

    iterations_first: int = 500
    iterations_rest: int = 250
    init: str = "prev-warped"
    start_from_prev: bool = False
    style_from_prev: bool = False
    temporal: bool = True
    long_term: Sequence[int] = (1,)
    passes: int = 1
    pass_iterations: int = 100
    pass_blend: float = 0.5
    max_frames: int | None = None  # frames to finish in this run, then stop (resume later)


@dataclass
class FrameReport:
    """What one finished frame cost and where its losses ended."""

    pass_index: int
    index: int
    iterations: int
    seconds: float
    terms: dict[str, float]
    first_terms: dict[str, float]
    stopped: str
    flow_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Hooks:
    """What the renderer tells its view (silent here): frame skipped (resumed), frame started, step,
    frame done. A view is a context manager, entered around the render."""

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None: ...

    def resumed(self, count: int) -> None: ...

    def pass_started(self, pass_index: int, passes: int, todo: int, total: int) -> None: ...

    def frame_started(self, pass_index: int, index: int, iterations: int) -> None: ...

    def step(self, iteration: int, terms: dict[str, float]) -> None: ...

    def frame_done(self, report: FrameReport) -> None: ...


def finished_frames(work: WorkFolder, passes: int, start: int, stop: int) -> int:
    """How many frames of ``[start, stop)`` are on disk, over all passes."""
    return sum(work.done(p, i) for p in range(passes) for i in range(start, stop))


def render_frames(work: WorkFolder, transfer: Transfer, flows: FlowCache | None, settings: VideoSettings,
                  hooks: Hooks | None = None, start: int = 0, stop: int | None = None) -> tuple[list[FrameReport], bool]:
    """Stylize frames ``[start, stop)`` of the content in ``work`` over all passes, skipping finished
    ones; returns (reports, complete). The span is a sequence of its own: its first frame starts
    afresh and no frame looks outside it, so shots render independently, in any order or place."""
    hooks = hooks or Hooks()
    stop = work.count() if stop is None else stop
    run = _SpanRun(work, transfer, flows, settings, hooks, start, stop)
    done = finished_frames(work, settings.passes, start, stop)
    if done:
        hooks.resumed(done)
    for pass_index in range(settings.passes):
        if not run.render_pass(pass_index):
            return run.reports, False
    return run.reports, True


class _SpanRun:
    """One call of :func:`render_frames`: the frame budget and the results kept for warping."""

    def __init__(self, work: WorkFolder, transfer: Transfer, flows: FlowCache | None, settings: VideoSettings,
                 hooks: Hooks, start: int, stop: int) -> None:
        self.work, self.transfer, self.flows, self.settings, self.hooks = work, transfer, flows, settings, hooks
        self.start, self.stop = start, stop
        self.reports: list[FrameReport] = []
        self.outputs: dict[tuple[int, int], np.ndarray] = {}
        self.budget = settings.max_frames

    def result(self, pass_index: int, index: int) -> np.ndarray:
        key = (pass_index, index)
        if key not in self.outputs:
            self.outputs[key] = read_png(self.work.frame_path(pass_index, index))
        return self.outputs[key]

    def render_pass(self, pass_index: int) -> bool:
        """Every unfinished frame of one pass, in its direction; False when the budget ran out."""
        work = self.work
        (work.root / f"pass{pass_index + 1}").mkdir(parents=True, exist_ok=True)
        backward = pass_index % 2 == 1
        order = list(range(self.stop - 1, self.start - 1, -1)) if backward else list(range(self.start, self.stop))
        step = 1 if backward else -1  # the neighbours already done in this pass lie at index + step * j
        todo = [i for i in order if not work.done(pass_index, i)]
        self.hooks.pass_started(pass_index, self.settings.passes, len(todo), self.stop - self.start)
        for index in todo:
            if self.budget is not None and self.budget <= 0:
                return False
            self.render_frame(pass_index, index, step)
            if self.budget is not None:
                self.budget -= 1
            reach = max(self.settings.long_term)
            for key in [k for k in self.outputs if k[0] != pass_index or abs(k[1] - index) > reach]:  # bounded memory
                del self.outputs[key]
        return True

    def render_frame(self, pass_index: int, index: int, step: int) -> None:
        """Optimize one frame, write it atomically, log and report it."""
        work, flows, settings = self.work, self.flows, self.settings
        content = work.content(index)
        flow_before = flows.seconds if flows else 0.0
        start, temporal, iterations = _plan(work, index, step, pass_index, (self.start, self.stop), content,
                                            self.transfer, flows, settings, self.result)
        extra_style = None
        neighbour = index + step
        if settings.style_from_prev and self.start <= neighbour < self.stop and work.done(pass_index, neighbour):
            extra_style = self.result(pass_index, neighbour)
        flow_seconds = (flows.seconds if flows else 0.0) - flow_before
        self.hooks.frame_started(pass_index, index, iterations)
        started = time.perf_counter()
        image, run = self.transfer.stylize(content, start, iterations, temporal, extra_style, on_step=self.hooks.step)
        write_png(work.frame_path(pass_index, index), image)
        self.outputs[(pass_index, index)] = image
        report = FrameReport(pass_index, index, run.iterations, time.perf_counter() - started, run.terms, run.first_terms,
                             run.stopped, flow_seconds)
        work.log({"pass": pass_index, "index": index, "iterations": run.iterations, "seconds": report.seconds,
                  "flow_seconds": flow_seconds, "terms": run.terms, "first_terms": run.first_terms, "stopped": run.stopped})
        self.reports.append(report)
        self.hooks.frame_done(report)


def _plan(work: WorkFolder, index: int, step: int, pass_index: int, span: tuple[int, int], content: np.ndarray,
          transfer: Transfer, flows: FlowCache | None, settings: VideoSettings,
          result: Callable[[int, int], np.ndarray]) -> tuple[np.ndarray, list[Temporal], int]:
    """Start image, temporal targets and iteration count for one frame of one pass."""
    neighbours = [index + step * j for j in settings.long_term if span[0] <= index + step * j < span[1]]
    warped: list[tuple[np.ndarray, np.ndarray]] = []  # (warped earlier result float [0, 1], mask), closest first
    if flows is not None and (settings.temporal or settings.init in WARPED_STARTS or pass_index > 0):
        from nstream.temporal import warp

        for other in neighbours if settings.temporal else neighbours[:1]:
            flow, mask = flows.get(index, other)
            warped.append((warp(result(pass_index, other).astype(np.float32) / 255.0, flow), mask))
    temporal = []
    if settings.temporal and warped:
        weights = long_term_weights([mask for _, mask in warped])
        temporal = [Temporal(image, weight) for (image, _), weight in zip(warped, weights, strict=True)]
    closest = warped[0] if warped and neighbours and neighbours[0] == index + step else None
    if pass_index > 0:
        own = result(pass_index - 1, index).astype(np.float32) / 255.0
        if closest is None:
            return own, temporal, settings.pass_iterations
        image, mask = closest
        d = settings.pass_blend * mask[..., None]
        return d * image + (1.0 - d) * own, temporal, settings.pass_iterations
    if not neighbours or index + step not in neighbours:
        return transfer.start_image(content, fresh_start(settings.init)), temporal, settings.iterations_first
    if settings.start_from_prev:
        return result(pass_index, index + step).astype(np.float32) / 255.0, temporal, settings.iterations_rest
    if settings.init == "prev-warped" and closest is not None:
        image, mask = closest
        m = mask[..., None]
        return m * image + (1.0 - m) * content.astype(np.float32) / 255.0, temporal, settings.iterations_rest
    if settings.init == "stylized" and closest is not None:  # the warped result, the fast stylization filling in
        image, mask = closest
        m = mask[..., None]
        return m * image + (1.0 - m) * transfer.start_image(content, "stylized"), temporal, settings.iterations_rest
    return transfer.start_image(content, settings.init), temporal, settings.iterations_rest
