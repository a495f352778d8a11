"""Decode, stylize and encode in three threads joined by bounded queues; stages run in between.

File sources: back-pressure, every frame goes out, in order. Live sources: the queues are
leaky (latest frame wins), so latency stays bounded however slow the engine is; every drop
is counted. Stopping drains what is queued and always closes every sink and every stage; so does
a source that fails mid-way (its error is raised once the frames decoded before it are out), and
so does a stage that fails (the frames it finished before go out; nothing more is read).

What runs between the queues is a list of :class:`Stage` objects (the network, then the temporal
blend). File sources can run the stages that do not need frames in order on several frames at once
(``workers``): on a CPU, two frames on one thread each get more out of the cores than one frame on
two threads, whose per-layer hand-offs cost CPU time (docs/BENCHMARKS.md, "workers"). The stages
after the first one that needs order (the temporal blend) run on the stylize thread in frame order,
while the workers already stylize the frames after it: one frame more is in flight than there are
workers, so no worker waits for the blend (docs/BENCHMARKS.md, "Frame buffers kept, and no worker waiting").
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.media.sinks import Sink
from nstream.media.sources import Source
from nstream.stats import PipelineStats

log = logging.getLogger(__name__)

END = object()  # end of stream marker


@runtime_checkable
class Stage(Protocol):
    """What runs between the decode and the encode queue.

    ``prepare`` is called once for every frame that will be processed, in frame order, before any
    stage processes it, and as early as the pipeline can: on the decode thread as the frame is queued
    (file sources: a stage can start work that needs the input only, such as the flow, while earlier
    frames are still in the network), on the stylize thread as the frame leaves the queue (live
    sources: frames dropped in the queue are never prepared). ``process`` may run on several worker
    threads at once unless ``ordered``. ``close`` is called once by the pipeline that started it.
    """

    name: str
    ordered: bool

    def prepare(self, frame: Frame) -> None: ...

    def process(self, frame: Frame) -> Frame: ...

    def close(self) -> None: ...


class FunctionStage:
    """A plain ``frame -> frame`` callable as an unordered stage (tests, simple filters)."""

    ordered = False

    def __init__(self, function: Callable[[Frame], Frame], name: str = "function") -> None:
        self.function = function
        self.name = name

    def prepare(self, frame: Frame) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        return self.function(frame)

    def close(self) -> None:
        pass


def as_stages(stages: Stage | Callable[[Frame], Frame] | Sequence[Stage | Callable[[Frame], Frame]]) -> list[Stage]:
    """One stage, one callable or a list of either, as a list of stages."""
    items = [stages] if isinstance(stages, Stage) or callable(stages) else list(stages)
    return [item if isinstance(item, Stage) else FunctionStage(item) for item in items]


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
    """Runs ``source -> stages -> sinks``; ``run`` returns when every sink and stage is closed."""

    def __init__(self, source: Source, stages: Stage | Callable[[Frame], Frame] | Sequence[Stage | Callable[[Frame], Frame]],
                 sinks: Sequence[Sink], queue_size: int = 4, stats: PipelineStats | None = None,
                 max_frames: int | None = None, workers: int = 1) -> None:
        """``workers`` frames of a file source go through the unordered stages at once (live sources:
        always one, for latency); the stages from the first ordered one on then see them in order."""
        self.source = source
        self.stages = as_stages(stages)
        first_ordered = next((i for i, stage in enumerate(self.stages) if stage.ordered), len(self.stages))
        self.parallel, self.in_order = self.stages[:first_ordered], self.stages[first_ordered:]
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
        self.stages_closed = False
        self.threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="decode", daemon=True),
            threading.Thread(target=self._guard, args=(self._stylize,), name="stylize", daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), name="encode", daemon=True),
        ]

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        self.stats.begin()
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
        """After the threads end: close the stages, re-raise the first error (sinks are closed by then)."""
        self.close_stages()
        self.stats.finish()
        if self.errors:
            raise self.errors[0]
        return self.stats

    def close_stages(self) -> None:
        """Close every stage once (a stage's worker may hold jobs queued for frames never processed)."""
        if self.stages_closed:
            return
        self.stages_closed = True
        for stage in self.stages:
            try:
                stage.close()
            except Exception as exc:  # noqa: BLE001 - one failing stage must not leave others open
                log.warning("closing stage %s failed: %s", stage.name, exc)
                self.errors.append(exc)

    # -- threads ---------------------------------------------------------------------------
    def _guard(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.abort()

    def _prepare(self, frame: Frame) -> None:
        for stage in self.stages:
            stage.prepare(frame)

    def _decode(self) -> None:
        early = not self.source.info.live  # live frames may still be dropped: prepared as they leave the queue
        try:
            frames = iter(self.source.frames())
            count = 0
            while self.max_frames is None or count < self.max_frames:
                started = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.stats.stage("decode", time.perf_counter() - started)
                if early:
                    self._prepare(frame)
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
        late = self.source.info.live
        try:
            while (frame := self.inbox.get()) is not END:
                if late:
                    self._prepare(frame)
                if pool is None:
                    if not self._deliver(*self._run_parallel(frame)):
                        return
                    continue
                running.append(pool.submit(self._run_parallel, frame))
                if len(running) > self.workers and not self._deliver(*running.popleft().result()):
                    return
            while running:
                if not self._deliver(*running.popleft().result()):
                    return
        except Exception as exc:  # noqa: BLE001 - a failing stage: nothing more is read, what it finished still goes out
            self.errors.append(exc)
            self.stopping.set()
            self.source.stop()
            self.inbox.abort()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            self.outbox.close()

    def _run_parallel(self, frame: Frame) -> tuple[Frame, float]:
        """The stages that may see frames out of order (a worker thread), timed."""
        started = time.perf_counter()
        for stage in self.parallel:
            frame = stage.process(frame)
        return frame, time.perf_counter() - started

    def _deliver(self, frame: Frame, seconds: float) -> bool:
        """Run the ordered stages on a frame (in frame order) and queue it for the sinks; False once aborted."""
        started = time.perf_counter()
        for stage in self.in_order:
            frame = stage.process(frame)
        self.stats.stage("stylize", seconds + time.perf_counter() - started)
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
