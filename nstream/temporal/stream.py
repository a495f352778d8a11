"""The temporal stage of the live/file pipeline: wraps the per-frame stylize callable.

:class:`TemporalStylizer` takes the pipeline's ``stylize(frame) -> frame`` and returns frames
blended with the flow-warped previous output. Flow runs beside inference: when frame t arrives,
the flow worker thread starts on (x_t, x_{t-1}) at once, the network stylizes x_t meanwhile, and the
blend waits only for whatever flow work is left (OpenCV and PyTorch release the GIL, so the two
really run at once).

File sources wait for the flow (every frame blended, output deterministic), and the pipeline starts
it earlier still: :meth:`TemporalStylizer.prepare` runs in the decode thread and queues the motion
job of each frame as it is decoded, so the flow worker runs up to a queue of frames ahead of the
network and uses the CPU the network leaves idle instead of starting only when the network does.
Live sources never wait longer than ``live_wait_s`` beyond the network: a frame whose flow is not
ready goes out unblended and is counted in ``stats.info["unblended"]`` (the dashboard shows it), and
no new flow job is queued behind one still running, so a slow flow never adds latency.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.temporal.blend import CHECKS, DEFAULT_CHECK, DEFAULT_STRENGTH, Cut, Motion, blend, check_strength, estimate_motion
from nstream.temporal.flow import FlowBackend
from nstream.temporal.scenecut import SceneCutDetector

log = logging.getLogger(__name__)


class TemporalStylizer:
    """``TemporalStylizer(stylize, flow)(frame) -> frame``: the stylized frame, temporally blended."""

    def __init__(self, stylize: Callable[[Frame], Frame], flow: FlowBackend, strength: float = DEFAULT_STRENGTH,
                 live: bool = False, cut_threshold: float | None = 0.3, smoothing: float | None = None,
                 stats: Any = None, live_wait_s: float = 0.005, check: str = DEFAULT_CHECK, contrast: bool = True,
                 refine: bool = True) -> None:
        if check not in CHECKS:
            raise NStreamError(f"unknown occlusion check {check!r}: use one of {', '.join(CHECKS)}")
        self.stylize = stylize
        self.check = check
        self.contrast = contrast
        self.refine = refine  # full-size flow around moving subjects (issue 19)
        self.flow = flow
        self.strength = check_strength(strength)
        self.live = live
        self.detector = SceneCutDetector(cut_threshold)
        self.smoothing = smoothing
        self.live_wait_s = live_wait_s
        self.info: dict[str, Any] = stats.info if stats is not None else {}
        checks = (" +consistency" if check == "consistency" else "") + ("" if contrast else " flat") + ("" if refine else " coarse")
        self.info.update(temporal=f"a={self.strength:g} flow={flow.describe()}{checks}", unblended=0, scene_cuts=0, flow_resets=0)
        self.previous_input: np.ndarray | None = None
        self.previous_index = -2  # the index of previous_input's frame: motion vectors need consecutive frames
        self.history: np.ndarray | None = None  # the previous output (uint8)
        self.pending: Future[Motion] | None = None
        self.ahead_input: np.ndarray | None = None  # the last frame prepare() saw (decode thread)
        self.prepared = False
        self.flow_seconds = 0.0
        self.flow_runs = 0
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flow")

    def _motion(self, current: np.ndarray, previous: np.ndarray, vectors: Any = None) -> Motion:
        if hasattr(self.flow, "use"):  # VectorFlow: the decoder's motion vectors of this frame (issue 19)
            self.flow.use(vectors)
        motion = estimate_motion(self.flow, current, previous, self.detector, self.smoothing, check=self.check,
                                 refine=self.refine)
        with self.lock:
            self.flow_seconds += motion.seconds
            self.flow_runs += 1
            self.info["flow_ms"] = round(1000 * self.flow_seconds / self.flow_runs, 2)
        return motion

    def prepare(self, frame: Frame) -> None:
        """File mode, decode thread: queue this frame's motion job now (see the module docstring).
        Live mode does nothing: a job queued ahead would add latency, and it is there to be skipped."""
        if self.live or self.strength == 0:
            return
        self.prepared = True
        current, previous = frame.image, self.ahead_input
        self.ahead_input = current
        if previous is not None and previous.shape == current.shape:
            frame.ahead["motion"] = self.worker.submit(self._motion, current, previous, frame.vectors)

    def _count(self, key: str) -> None:
        self.info[key] = self.info.get(key, 0) + 1

    def __call__(self, frame: Frame) -> Frame:
        current = frame.image
        job: Future[Motion] | None = None
        busy = False
        if self.prepared:
            job = frame.ahead.pop("motion", None)
        elif self.strength > 0 and self.previous_input is not None and self.previous_input.shape == current.shape:
            if self.live and self.pending is not None and not self.pending.done():
                busy = True  # the worker is still on an older pair: do not queue behind it
            else:
                vectors = frame.vectors if frame.index == self.previous_index + 1 else None  # none across dropped frames
                job = self.pending = self.worker.submit(self._motion, current, self.previous_input, vectors)
        self.previous_input, self.previous_index = current, frame.index
        return self._blend(self.stylize(frame), job, busy)

    def finish(self, frame: Frame) -> Frame:
        """File mode, split in two: the blend alone, for a frame the network has stylized already
        (the pipeline runs the network on several frames at once and this in frame order)."""
        if not self.prepared:
            raise NStreamError("TemporalStylizer.finish needs the motion jobs that prepare() queues (file mode)")
        return self._blend(frame, frame.ahead.pop("motion", None), False)

    def _blend(self, frame: Frame, job: Future[Motion] | None, busy: bool) -> Frame:
        """Blend the stylized ``frame`` with the history along ``job``'s motion; the history moves on."""
        styled = frame.image
        out: np.ndarray | None = None
        if job is not None:
            motion: Motion | None
            try:
                motion = job.result(timeout=self.live_wait_s if self.live else None)
            except FutureTimeout:
                motion = None
            if motion is None:
                busy = True
            elif motion.cut is not None:
                self._count("scene_cuts" if motion.cut is Cut.SCENE else "flow_resets")
                log.info("frame %d: %s (histogram distance %.2f, reliable %.2f): history reset", frame.index, motion.cut.value,
                         motion.histogram_distance, motion.reliable)
            elif self.history is not None and self.history.shape == styled.shape:
                out = blend(styled, self.history, motion, self.strength, self.contrast)
        if busy:
            self._count("unblended")
        if out is None:
            self.history = styled
            return frame
        self.history = frame.image = out
        return frame

    def close(self) -> None:
        """Stop the flow worker: jobs queued ahead for frames that will not be stylized are dropped."""
        self.worker.shutdown(wait=True, cancel_futures=True)
