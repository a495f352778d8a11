"""The pipeline's policies: back-pressure for files, latest-frame-wins for live sources."""

from __future__ import annotations

import json
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from conftest import ListSink, make_clip, probe, run_stream
from nstream.errors import NStreamError
from nstream.frames import Frame, SourceInfo
from nstream.media.sources import FileSource, Source
from nstream.pipeline import END, FrameQueue, Pipeline


def _frame(index: int, audio: list | None = None) -> Frame:
    return Frame(np.zeros((4, 4, 3), np.uint8), index, index, Fraction(1, 25), time.monotonic(), audio=audio or [])


def test_blocking_queue_applies_back_pressure():
    queue = FrameQueue(2, leaky=False)
    queue.put(_frame(0))
    queue.put(_frame(1))
    done = threading.Event()
    threading.Thread(target=lambda: (queue.put(_frame(2)), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # the producer waits: nothing is dropped
    assert queue.get().index == 0
    assert done.wait(2)
    queue.close()
    assert [queue.get().index, queue.get().index] == [1, 2]
    assert queue.get() is END


def test_leaky_queue_keeps_latest_and_carries_audio():
    drops = []
    queue = FrameQueue(1, leaky=True, on_drop=lambda: drops.append(1))
    queue.put(_frame(0, audio=["a0"]))
    queue.put(_frame(1, audio=["a1"]))
    queue.put(_frame(2))
    latest = queue.get()
    assert latest.index == 2 and latest.audio == ["a0", "a1"]
    assert len(drops) == 2


def test_abort_wakes_a_blocked_producer():
    queue = FrameQueue(1, leaky=False)
    queue.put(_frame(0))
    result = []
    thread = threading.Thread(target=lambda: result.append(queue.put(_frame(1))))
    thread.start()
    queue.abort()
    thread.join(2)
    assert result == [False]


class Ordered:
    """A stage that must see frames in order (like the temporal blend)."""

    name, ordered = "ordered", True

    def __init__(self, process) -> None:
        self.process = process
        self.closed = 0

    def prepare(self, frame: Frame) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


class Prepared(Ordered):
    """An unordered stage that starts work in ``prepare``."""

    ordered = False

    def __init__(self, prepare, process) -> None:
        super().__init__(process)
        self.prepare = prepare


def test_file_source_pipeline_is_frame_exact_with_a_slow_stage(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=20, audio=True)
    source = FileSource(str(clip))
    sink = ListSink()

    def slow(frame: Frame) -> Frame:
        time.sleep(0.01)
        return frame

    stats = Pipeline(source, slow, [sink], queue_size=2).run()
    source.close()
    assert [f.index for f in sink.frames] == list(range(20))
    assert [f.pts for f in sink.frames] == sorted(f.pts for f in sink.frames)
    assert sum(len(f.audio) for f in sink.frames) > 0
    assert stats.snapshot()["dropped"] == 0 and sink.closed


def test_workers_stylize_frames_at_once_and_finish_sees_them_in_order(tmp_path):
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=16, audio=False)))
    sink = ListSink()
    lock = threading.Lock()
    running, most, finished = [0], [0], []

    def stage(frame: Frame) -> Frame:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.03 if frame.index % 3 == 0 else 0.005)  # later frames overtake earlier ones
        with lock:
            running[0] -= 1
        return frame

    def finish(frame: Frame) -> Frame:
        finished.append((frame.index, threading.current_thread().name))
        return frame

    Pipeline(source, [stage, Ordered(finish)], [sink], queue_size=4, workers=2).run()
    source.close()
    assert most[0] == 2
    assert finished == [(i, "stylize") for i in range(16)]
    assert [f.index for f in sink.frames] == list(range(16)) and sink.closed


def test_workers_stylize_the_next_frame_while_the_ordered_stage_runs(tmp_path):
    """No worker idles while the blend runs: frame 2 starts before frame 0 leaves the ordered stage."""
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=8, audio=False)))
    third_started = threading.Event()
    seen_by_first = []

    def stage(frame: Frame) -> Frame:
        if frame.index == 2:
            third_started.set()
        return frame

    def finish(frame: Frame) -> Frame:
        if frame.index == 0:
            seen_by_first.append(third_started.wait(3))
        return frame

    sink = ListSink()
    Pipeline(source, [stage, Ordered(finish)], [sink], queue_size=4, workers=2).run()
    source.close()
    assert seen_by_first == [True]
    assert [f.index for f in sink.frames] == list(range(8))


def test_prepare_sees_every_frame_in_the_decode_thread_before_the_stage(tmp_path):
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=12, audio=False)))
    sink = ListSink()
    seen: list[tuple[int, str]] = []

    def prepare(frame: Frame) -> None:
        seen.append((frame.index, threading.current_thread().name))
        frame.ahead["order"] = len(seen)

    def stage(frame: Frame) -> Frame:
        assert frame.ahead["order"] == frame.index + 1  # prepared before it got here
        time.sleep(0.01)
        return frame

    Pipeline(source, [Prepared(prepare, stage)], [sink], queue_size=3).run()
    source.close()
    assert seen == [(i, "decode") for i in range(12)] and len(sink.frames) == 12


def test_a_finished_pipeline_is_freed_at_once(tmp_path):
    """No reference cycle through the pipeline: its engine and threads go when it does, not at a GC pass."""
    import gc
    import weakref

    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=3, audio=False)))
    gc.disable()
    try:
        pipeline = Pipeline(source, lambda frame: frame, [ListSink()])
        pipeline.run()
        gone = weakref.ref(pipeline)
        del pipeline
        assert gone() is None
    finally:
        gc.enable()
        source.close()


class _BrokenStage(Exception):
    pass


@pytest.mark.parametrize("workers", [1, 2])
def test_stage_error_still_closes_sinks(tmp_path, workers):
    """The frames stylized before the failing one go out (none lost to a race with the error), then
    the sinks close and the error is raised."""
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=10, audio=False)))
    sink = ListSink()

    def explode(frame: Frame) -> Frame:
        if frame.index == 3:
            raise _BrokenStage("boom")
        return frame

    pipeline = Pipeline(source, explode, [sink], workers=workers)
    try:
        pipeline.run()
    except _BrokenStage:
        pass
    else:
        raise AssertionError("the stage error was swallowed")
    assert sink.closed and len(sink.frames) == 3


class _TickSource(Source):
    """A live source producing a frame every ``period`` seconds."""

    def __init__(self, frames: int, period: float) -> None:
        super().__init__()
        self.count, self.period = frames, period
        self.info = SourceInfo("ticks", 4, 4, Fraction(1, 1) / Fraction(period).limit_denominator(1000),
                               Fraction(1, 1000), live=True, kind="webcam")

    def frames(self):
        for i in range(self.count):
            if self.stop_event.wait(self.period):
                return
            yield Frame(np.zeros((4, 4, 3), np.uint8), i, i * round(self.period * 1000), Fraction(1, 1000),
                        time.monotonic())


class _FailingSource(_TickSource):
    """A file-like source that breaks after ``frames`` frames."""

    def __init__(self, frames: int) -> None:
        super().__init__(frames, 0.001)
        self.info.live = False

    def frames(self):
        yield from super().frames()
        raise NStreamError("cannot read frame: the source broke")


def test_a_source_failing_mid_way_still_delivers_what_it_decoded():
    sink = ListSink()

    def slow(frame: Frame) -> Frame:
        time.sleep(0.02)
        return frame

    pipeline = Pipeline(_FailingSource(6), slow, [sink], workers=2)
    with pytest.raises(NStreamError, match="the source broke"):
        pipeline.run()
    assert [f.index for f in sink.frames] == list(range(6)) and sink.closed


def test_live_source_latency_stays_bounded_with_a_slow_engine():
    """Frames arrive every 10 ms, the engine takes 100 ms: most frames are dropped (counted),
    and the latency of those delivered stays near the engine's own time, not growing."""
    sink = ListSink()

    def slow(frame: Frame) -> Frame:
        time.sleep(0.1)
        return frame

    pipeline = Pipeline(_TickSource(150, 0.01), slow, [sink], workers=4)
    assert pipeline.workers == 1  # live: one frame at a time, so no frame waits behind another
    stats = pipeline.run().snapshot()
    assert stats["dropped"] > 50
    assert stats["frames_in"] == 150 == stats["frames_out"] + stats["dropped"]
    latencies = [f.captured for f in sink.frames]
    assert len(latencies) >= 5
    # bounded: queue of one waiting + one in the engine + one waiting to be written
    assert stats["latency_ms"]["max"] < 1000


def test_live_file_mode_counts_drops_end_to_end(tmp_path, style_model):
    """stream.py --live on a 100 fps clip with a real network at full size: drops are counted."""
    clip = make_clip(tmp_path / "fast.mp4", frames=60, size=(320, 240), fps=100, audio=False)
    stats_path = tmp_path / "stats.json"
    result = run_stream("-i", str(clip), "--live", "-o", str(tmp_path / "o.mp4"), "-s", str(style_model),
                        "--no-dashboard", "--stats-json", str(stats_path))
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["frames_in"] == 60
    assert stats["dropped"] > 0
    assert stats["frames_out"] + stats["dropped"] == 60
    assert probe(tmp_path / "o.mp4")["frames"] == stats["frames_out"]


def test_every_stage_is_closed_once_even_when_one_fails(tmp_path):
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=6, audio=False)))

    def explode(frame: Frame) -> Frame:
        if frame.index == 2:
            raise _BrokenStage("boom")
        return frame

    first, last = Prepared(lambda frame: None, explode), Ordered(lambda frame: frame)
    pipeline = Pipeline(source, [first, last], [ListSink()], workers=2)
    with pytest.raises(_BrokenStage):
        pipeline.run()
    pipeline.close_stages()
    source.close()
    assert first.closed == 1 and last.closed == 1


def test_live_frames_are_prepared_as_they_leave_the_queue_never_when_dropped():
    """Live: a frame dropped in the queue must not start work (a flow job for a frame never blended)."""
    sink = ListSink()
    prepared: list[tuple[int, str]] = []

    def slow(frame: Frame) -> Frame:
        time.sleep(0.05)
        return frame

    stage = Prepared(lambda frame: prepared.append((frame.index, threading.current_thread().name)), slow)
    stats = Pipeline(_TickSource(40, 0.005), [stage], [sink]).run().snapshot()
    assert stats["dropped"] > 10
    assert {name for _, name in prepared} == {"stylize"}
    assert [index for index, _ in prepared] == [f.index for f in sink.frames]


def test_the_runs_clock_starts_with_the_pipeline_not_with_the_engines(tmp_path):
    """fps is frames over the pipeline's own time: building and warming engines (here a 2 s wait between
    the stats' creation and the start) must not count."""
    from nstream.stats import PipelineStats

    stats = PipelineStats()
    time.sleep(2.0)
    source = FileSource(str(make_clip(tmp_path / "in.mp4", frames=3, audio=False)))
    Pipeline(source, [lambda frame: frame], [ListSink()], stats=stats).run()
    source.close()
    assert stats.snapshot()["elapsed_s"] < 2.0
