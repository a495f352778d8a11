"""Pipeline figures: per-stage rates and times, latency percentiles, drops, queue depths.

A plain, thread-safe object; the dashboard and ``--stats-json`` are views over it. Memory is
bounded: percentiles come from a window of recent frames, not from every frame ever seen.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

WINDOW = 4096  # recent samples kept for percentiles and means
RATE_WINDOW_S = 2.0  # fps is measured over this many recent seconds

# Keys of ``PipelineStats.info``: what the session, its stages and the run's outcome report beside the
# measured figures (the dashboard, the summary and --stats-json read them; tests and tools parse the JSON).
ENGINE, PRECISION, DEVICE, ENGINE_REASON = "engine", "precision", "device", "engine_reason"
RESOLUTION, INPUT, LIVE, KIND, FRAME_COUNT = "resolution", "input", "live", "kind", "frame_count"
OUTPUTS, WORKERS, NETWORK = "outputs", "workers", "network"
STYLE, STYLES, STYLE_SWITCHES = "style", "styles", "style_switches"
TEMPORAL, UNBLENDED, SCENE_CUTS, FLOW_RESETS, FLOW_MS = "temporal", "unblended", "scene_cuts", "flow_resets", "flow_ms"
COMPLETE, INTERRUPTED, TRUNCATED = "complete", "interrupted", "truncated"


class StageStats:
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.busy_s = 0.0
        self.recent: deque[float] = deque(maxlen=WINDOW)  # end times, for the current rate
        self.durations: deque[float] = deque(maxlen=WINDOW)

    def record(self, seconds: float, now: float) -> None:
        self.count += 1
        self.busy_s += seconds
        self.recent.append(now)
        self.durations.append(seconds)

    def rate(self, now: float) -> float:
        while self.recent and now - self.recent[0] > RATE_WINDOW_S:
            self.recent.popleft()
        if len(self.recent) < 2:
            return 0.0
        span = max(now - self.recent[0], 1e-6)
        return (len(self.recent) - 1) / span if span < RATE_WINDOW_S else len(self.recent) / RATE_WINDOW_S


class PipelineStats:
    STAGES = ("decode", "stylize", "encode")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stages = {name: StageStats(name) for name in self.STAGES}
        self.frames_in = 0
        self.frames_out = 0
        self.dropped: dict[str, int] = {}
        self.latencies: deque[float] = deque(maxlen=WINDOW)
        self.latency_max = 0.0
        self.started = time.monotonic()
        self.ended: float | None = None
        self.queues: dict[str, Callable[[], int]] = {}
        self.info: dict[str, Any] = {}

    def stage(self, name: str, seconds: float) -> None:
        with self.lock:
            self.stages[name].record(seconds, time.monotonic())
            if name == "decode":
                self.frames_in += 1

    def drop(self, reason: str) -> None:
        with self.lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def delivered(self, captured: float) -> None:
        latency = time.monotonic() - captured
        with self.lock:
            self.frames_out += 1
            self.latencies.append(latency)
            self.latency_max = max(self.latency_max, latency)

    def begin(self) -> None:
        """The clock of the run's rates starts when the pipeline does, not when engines began to build."""
        with self.lock:
            self.started = time.monotonic()

    def finish(self) -> None:
        self.ended = time.monotonic()

    def outcome(self, *, interrupted: bool, stopped: bool, truncated: bool) -> None:
        """How the run ended, for the summary and ``--stats-json``: ``complete`` when the whole input
        (or the part asked for) went out; ``interrupted`` after Ctrl-C or SIGTERM; ``truncated`` when
        the input itself ended short of what it promised."""
        with self.lock:
            self.info.update({COMPLETE: not (stopped or truncated), INTERRUPTED: interrupted, TRUNCATED: truncated})

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            elapsed = (self.ended or now) - self.started
            latencies = np.array(self.latencies) * 1000 if self.latencies else np.zeros(1)
            stages = {
                name: {
                    "frames": s.count,
                    "fps_now": round(s.rate(now), 2),
                    "mean_ms": round(1000 * float(np.mean(s.durations)), 3) if s.durations else 0.0,
                    "busy_s": round(s.busy_s, 3),
                }
                for name, s in self.stages.items()
            }
            return {
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(self.dropped),
                "elapsed_s": round(elapsed, 3),
                "fps": round(self.frames_out / elapsed, 3) if elapsed > 0 else 0.0,
                "latency_ms": {
                    "p50": round(float(np.percentile(latencies, 50)), 2),
                    "p95": round(float(np.percentile(latencies, 95)), 2),
                    "max": round(self.latency_max * 1000, 2),
                },
                "stages": stages,
                "queues": {name: depth() for name, depth in self.queues.items()},
                **self.info,
            }
