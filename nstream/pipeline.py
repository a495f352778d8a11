"""Decode, stylize and encode in three threads joined by bounded queues.

File sources: back-pressure, every frame goes out, in order. Live sources: the queues are
leaky (latest frame wins), so latency stays bounded however slow the engine is; every drop
is counted. Stopping drains what is queued and always closes every sink; so does a source that
fails mid-way (its error is raised once the frames decoded before it are out).

File sources can stylize several frames at once (``workers``): on a CPU, two frames on one
thread each get more out of the cores than one frame on two threads, whose per-layer hand-offs
cost CPU time (lite at 360p on 2 cores: 46.9 against 37.3 fps, docs/BENCHMARKS.md). Whatever must see the frames in
order (the temporal blend) is the ``finish`` callable, run on the stylize thread in frame order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.media.sinks import Sink
from nstream.media.sources import Source
from nstream.stats import PipelineStats

log = logging.getLogger(__name__)

END = object()  # end of stream marker


class FrameQueue:
    """A bounded queue that either blocks the producer (files) or drops the oldest frame (live).

    A dropped frame's audio packets move to the frame that replaces it, so live output keeps
    all of its sound. ``close`` lets consumers drain, ``abort`` wakes everyone at once.
    """

    def __init__(self, maxsize: int, leaky: bool, on_drop: Callable[[], None] | None = None) -> None:
        self.maxsize = max(1, maxsize)
        self.leaky = leaky
        self.on_drop = on_drop
        self.items: deque[Frame] = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.aborted = False

    def put(self, frame: Frame) -> bool:
        """Queue a frame; False once the queue was aborted."""
        with self.cond:
            if self.leaky:
                while len(self.items) >= self.maxsize:
                    old = self.items.popleft()
                    frame.audio[:0] = old.audio
                    if self.on_drop:
                        self.on_drop()
            else:
                while len(self.items) >= self.maxsize and not self.aborted:
                    self.cond.wait()
            if self.aborted:
                return False
            self.items.append(frame)
            self.cond.notify_all()
            return True

    def get(self) -> Any:
        """The next frame, or END after ``close`` has been drained or on ``abort``."""
        with self.cond:
            while not self.items and not self.closed and not self.aborted:
                self.cond.wait()
            if self.aborted or not self.items:
                return END
            frame = self.items.popleft()
            self.cond.notify_all()
            return frame

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.aborted = True
            self.cond.notify_all()

    def __len__(self) -> int:
        return len(self.items)


class Pipeline:
    """Runs ``source -> stylize -> sinks``; ``run`` returns when every sink is closed."""

    def __init__(self, source: Source, stylize: Callable[[Frame], Frame], sinks: Sequence[Sink],
                 queue_size: int = 4, stats: PipelineStats | None = None, max_frames: int | None = None,
                 prepare: Callable[[Frame], None] | None = None, workers: int = 1,
                 finish: Callable[[Frame], Frame] | None = None) -> None:
        """``prepare`` runs in the decode thread on every frame before it is queued: a stage can start
        work that needs the input only (the temporal stage's flow) while earlier frames are stylized.
        ``workers`` frames of a file source are stylized at once (live sources: always one, for
        latency); ``finish`` then runs on each stylized frame in order."""
        self.source = source
        self.stylize = stylize
        self.prepare = prepare
        self.finish_frame = finish
        self.workers = 1 if source.info.live else max(1, int(workers))
        self.sinks = list(sinks)
        self.stats = stats or PipelineStats()
        self.max_frames = max_frames
        live = source.info.live
        size = 1 if live else queue_size
        stats = self.stats  # the callbacks must not hold the pipeline: that cycle kept the engine alive until a GC pass
        self.inbox = FrameQueue(size, leaky=live, on_drop=lambda: stats.drop("stylize busy"))
        self.outbox = FrameQueue(size if not live else 2, leaky=live, on_drop=lambda: stats.drop("output busy"))
        self.stats.queues = {"decoded": self.inbox.__len__, "stylized": self.outbox.__len__}
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="decode", daemon=True),
            threading.Thread(target=self._guard, args=(self._stylize,), name="stylize", daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), name="encode", daemon=True),
        ]

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def request_stop(self) -> None:
        """First call: stop reading and drain. Second call: abandon queued frames too."""
        if self.stopping.is_set():
            self.abort()
            return
        self.stopping.set()
        self.source.stop()

    def abort(self) -> None:
        self.stopping.set()
        self.source.stop()
        self.inbox.abort()
        self.outbox.abort()

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def tick(self) -> None:
        """Main-thread housekeeping: GUI events of sinks, and their requests to quit."""
        for sink in self.sinks:
            sink.pump()
            if sink.quit is not None and sink.quit.is_set() and not self.stopping.is_set():
                self.request_stop()

    def join(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def run(self) -> PipelineStats:
        self.start()
        while self.alive():
            self.tick()
            self.join(0.02)
        self.tick()
        return self.finish()

    def finish(self) -> PipelineStats:
        """After the threads end: re-raise the first stage error (sinks are closed by then)."""
        self.stats.finish()
        if self.errors:
            raise self.errors[0]
        return self.stats

    # -- stages ----------------------------------------------------------------------------
    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.abort()

    def _decode(self) -> None:
        try:
            frames = iter(self.source.frames())
            count = 0
            while self.max_frames is None or count < self.max_frames:
                started = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.stats.stage("decode", time.perf_counter() - started)
                if self.prepare is not None:
                    self.prepare(frame)
                if not self.inbox.put(frame):
                    break
                count += 1
        except Exception as exc:  # noqa: BLE001 - a source that fails mid-way: what it gave still goes out
            self.errors.append(exc)
        finally:
            self.inbox.close()

    def _stylize(self) -> None:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stylize") if self.workers > 1 else None
        running: deque[Future[tuple[Frame, float]]] = deque()  # in frame order
        try:
            while (frame := self.inbox.get()) is not END:
                if pool is None:
                    if not self._deliver(*self._timed_stylize(frame)):
                        return
                    continue
                running.append(pool.submit(self._timed_stylize, frame))
                if len(running) >= self.workers and not self._deliver(*running.popleft().result()):
                    return
            while running:
                if not self._deliver(*running.popleft().result()):
                    return
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.outbox.close()

    def _timed_stylize(self, frame: Frame) -> tuple[Frame, float]:
        started = time.perf_counter()
        return self.stylize(frame), time.perf_counter() - started

    def _deliver(self, frame: Frame, seconds: float) -> bool:
        """Finish a stylized frame (in order) and queue it for the sinks; False once aborted."""
        if self.finish_frame is not None:
            started = time.perf_counter()
            frame = self.finish_frame(frame)
            seconds += time.perf_counter() - started
        self.stats.stage("stylize", seconds)
        return self.outbox.put(frame)

    def _encode(self) -> None:
        try:
            while (frame := self.outbox.get()) is not END:
                started = time.perf_counter()
                for sink in self.sinks:
                    sink.write(frame)
                self.stats.stage("encode", time.perf_counter() - started)
                self.stats.delivered(frame.captured)
        finally:
            self._close_sinks()

    def _close_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - one failing sink must not leave others open
                if not isinstance(exc, NStreamError):  # a user-facing error is reported once, by the caller
                    log.warning("closing %s failed: %s", sink.name, exc)
                self.errors.append(exc)
