"""The temporal stage of the live/file pipeline: stylized frames blended with the warped history.

:class:`TemporalStage` runs after the network stage and needs frames in order. Flow runs beside
inference: :meth:`TemporalStage.prepare` queues the motion job of each frame (flow between it and
the frame before) on the flow worker thread before the network sees it, and the blend in
:meth:`TemporalStage.process` waits only for whatever flow work is left (OpenCV and PyTorch release
the GIL, so the two really run at once).

For file sources the pipeline prepares each frame on the decode thread, so the flow worker runs up
to a queue of frames ahead of the network and uses the CPU the network leaves idle; every frame
waits for its flow (every frame blended, output deterministic). Live sources are prepared as they
leave the queue and never wait longer than ``live_wait_s`` beyond the network: a frame whose flow
is not ready goes out unblended and is counted in ``stats.info["unblended"]`` (the dashboard shows
it), and no new flow job is queued behind one still running, so a slow flow never adds latency.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.stats import FLOW_MS, FLOW_RESETS, SCENE_CUTS, TEMPORAL, UNBLENDED
from nstream.temporal.blend import CHECKS, DEFAULT_CHECK, DEFAULT_STRENGTH, Cut, Motion, blend, check_strength, estimate_motion
from nstream.temporal.flow import FlowBackend
from nstream.temporal.scenecut import SceneCutDetector
from nstream.temporal.still import StillCamera

log = logging.getLogger(__name__)
MOTION, BUSY = "motion", "flow busy"  # what prepare() leaves in Frame.ahead for process()


class TemporalStage:
    """The pipeline stage that blends each stylized frame with the flow-warped previous output."""

    name = "temporal"
    ordered = True

    def __init__(self, flow: FlowBackend, strength: float = DEFAULT_STRENGTH, live: bool = False,
                 cut_threshold: float | None = 0.3, smoothing: float | None = None, stats: Any = None,
                 live_wait_s: float = 0.005, check: str = DEFAULT_CHECK, contrast: bool = True,
                 refine: bool = True, still_scene: bool = True) -> None:
        if check not in CHECKS:
            raise NStreamError(f"unknown occlusion check {check!r}: use one of {', '.join(CHECKS)}")
        self.check = check
        self.contrast = contrast
        self.refine = refine  # full-size flow around moving subjects
        self.camera = StillCamera() if still_scene else None  # a still camera's shortcuts (temporal/still.py)
        self.flow = flow
        self.strength = check_strength(strength)
        self.live = live
        self.detector = SceneCutDetector(cut_threshold)
        self.smoothing = smoothing
        self.live_wait_s = live_wait_s
        self.info: dict[str, Any] = stats.info if stats is not None else {}
        checks = ((" +consistency" if check == "consistency" else "") + ("" if contrast else " flat")
                  + ("" if refine else " coarse") + ("" if still_scene else " no-still-scene"))
        self.info.update({TEMPORAL: f"a={self.strength:g} flow={flow.describe()}{checks}", UNBLENDED: 0,
                          SCENE_CUTS: 0, FLOW_RESETS: 0})
        self.previous_input: np.ndarray | None = None  # the last frame prepare() saw
        self.previous_index = -2  # its index: motion vectors describe consecutive frames only
        self.history: np.ndarray | None = None  # the previous output (uint8)
        self.pending: Future[Motion] | None = None
        self.flow_seconds = 0.0
        self.flow_runs = 0
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flow")

    def _motion(self, current: np.ndarray, previous: np.ndarray, vectors: Any = None) -> Motion:
        if hasattr(self.flow, "use"):  # VectorFlow: the decoder's motion vectors of this frame
            self.flow.use(vectors)
        motion = estimate_motion(self.flow, current, previous, self.detector, self.smoothing, check=self.check,
                                 refine=self.refine, camera=self.camera)
        with self.lock:
            self.flow_seconds += motion.seconds
            self.flow_runs += 1
            self.info[FLOW_MS] = round(1000 * self.flow_seconds / self.flow_runs, 2)
        return motion

    def prepare(self, frame: Frame) -> None:
        """Queue the motion job between this frame and the one prepared before it (see the module
        docstring); live: none behind a job still running, the frame will go out unblended."""
        if self.strength == 0:
            return
        current, previous = frame.image, self.previous_input
        consecutive = frame.index == self.previous_index + 1  # a live queue may have dropped frames in between
        self.previous_input, self.previous_index = current, frame.index
        if previous is None or previous.shape != current.shape:
            return
        if self.live and self.pending is not None and not self.pending.done():
            frame.ahead[BUSY] = True  # the worker is still on an older pair: do not queue behind it
            return
        vectors = frame.vectors if consecutive else None
        frame.ahead[MOTION] = self.pending = self.worker.submit(self._motion, current, previous, vectors)

    def _count(self, key: str) -> None:
        self.info[key] = self.info.get(key, 0) + 1

    def process(self, frame: Frame) -> Frame:
        """Blend the stylized ``frame`` with the history along its motion; the history moves on."""
        job: Future[Motion] | None = frame.ahead.pop(MOTION, None)
        busy = bool(frame.ahead.pop(BUSY, False))
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
                self._count(SCENE_CUTS if motion.cut is Cut.SCENE else FLOW_RESETS)
                log.info("frame %d: %s (histogram distance %.2f, reliable %.2f): history reset", frame.index, motion.cut.value,
                         motion.histogram_distance, motion.reliable)
            elif self.history is not None and self.history.shape == styled.shape:
                out = blend(styled, self.history, motion, self.strength, self.contrast)
        if busy:
            self._count(UNBLENDED)
        if out is None:
            self.history = styled
            return frame
        self.history = frame.image = out
        return frame

    def close(self) -> None:
        """Stop the flow worker: jobs queued ahead for frames that will not be stylized are dropped."""
        self.worker.shutdown(wait=True, cancel_futures=True)
