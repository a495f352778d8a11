"""A runnable stylizing session built from a :class:`~nstream.config.StreamConfig`.

``build_session(config)`` loads the styles, builds and warms up every engine, opens the source and
the sinks and puts the stages together (network, then the temporal blend); :meth:`Session.run`
runs the pipeline to the end and returns its figures. ``stream.py``, the Python API
(:func:`nstream.stylize_video`), the web server and cluster workers all go through here, so they
run the same code. A caller may bring its own source or sinks (a browser's WebRTC track, say).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nstream import stats as keys
from nstream.config import EngineConfig, StreamConfig
from nstream.engines.graph_engine import TORCH_HINT, torch_installed
from nstream.errors import NStreamError
from nstream.media.sinks import Sink
from nstream.media.sources import Source
from nstream.memory import reuse_frame_buffers
from nstream.pipeline import Pipeline, Stage
from nstream.stats import PipelineStats
from nstream.styleswitch import NetworkStage, StyleSwitch

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass
class Session:
    """Everything one run needs, opened and connected; :meth:`run` once, then it is closed."""

    config: StreamConfig
    source: Source
    stages: list[Stage]
    sinks: list[Sink]
    outputs: list[str]
    stats: PipelineStats
    switch: StyleSwitch
    pipeline: Pipeline
    signalled: list[bool] = field(default_factory=list)  # Ctrl-C / SIGTERM seen: interrupted, not complete

    def progress(self) -> tuple[int, int | None]:
        """(frames written, frames expected or None for live and unknown lengths)."""
        snapshot = self.stats.snapshot()
        return snapshot["frames_out"], None if snapshot.get(keys.LIVE) else snapshot.get(keys.FRAME_COUNT)

    def stop(self) -> None:
        """Stop reading and drain: every output is finalized (a second call abandons queued frames)."""
        self.pipeline.request_stop()

    def _on_signal(self) -> None:
        self.signalled.append(True)
        self.stop()

    def run(self, dashboard: str = "off", handle_signals: bool = False,
            on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Run to the end of the input (or a stop), close everything, return the final figures.

        ``dashboard``: auto, rich, plain or off (nstream/dashboard.py); ``handle_signals``: SIGINT/SIGTERM
        drain, SIGUSR1 switches style (main thread only); ``on_progress(done, total)`` is called from
        this thread a few times a second."""
        from nstream import dashboard as board

        restorers = [_install_stop_handlers(self._on_signal), self.switch.install_signal()] if handle_signals else []
        pipeline = self.pipeline
        try:
            pipeline.start()
            tick = pipeline.tick if on_progress is None else _with_progress(pipeline.tick, self.progress, on_progress)
            try:
                board.watch(self.stats.snapshot, pipeline.alive, mode=dashboard, tick=tick)
            finally:
                pipeline.join()
                pipeline.tick()
            pipeline.finish()
        finally:
            for restore in restorers:
                restore()
            self.source.close()
            pipeline.close_stages()
        self.stats.outcome(interrupted=bool(self.signalled), stopped=pipeline.stopping.is_set(),
                           truncated=self.source.truncated)
        if on_progress is not None:
            on_progress(*self.progress())
        return self.stats.snapshot()

    def close(self) -> None:
        """Close a session that will not run (its run closes everything itself)."""
        for sink in self.sinks:
            sink.close()
        self.source.close()
        self.pipeline.close_stages()


def _with_progress(tick: Callable[[], None], progress: Callable[[], tuple[int, int | None]],
                   on_progress: ProgressCallback, every_s: float = 0.2) -> Callable[[], None]:
    """``tick`` that also reports progress, at most every ``every_s`` seconds."""
    last = [0.0]

    def ticked() -> None:
        tick()
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            on_progress(*progress())

    return ticked


def _install_stop_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGINT/SIGTERM: first drains, second abandons the queue. Returns the restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def plan_workers(workers: int | None, threads: int | None, live: bool, cpu: bool,
                 cores: int | None = None) -> tuple[int, int | None]:
    """(frames stylized at once, network threads for each): see ``--workers``. One frame per thread
    wastes less CPU than one frame on all of them (per-layer hand-offs), so files on a CPU get two
    workers; live sources get one (latency) and GPUs one (their engines run one frame at a time)."""
    if workers is not None and workers < 1:
        raise NStreamError(f"--workers {workers}: use 1 or more")
    cores = cores or os.cpu_count() or 1
    if live or not cpu:
        return 1, threads
    if workers is None:
        if threads is not None or cores < 2:
            return 1, threads
        workers = 2
    return workers, threads or max(1, cores // workers)


def check_light(engine: EngineConfig) -> None:
    """Without PyTorch only ONNX Runtime on the CPU in fp32 can run: say so for anything else."""
    asked = []
    if engine.engine not in ("auto", "onnxruntime"):
        asked.append(f"--engine {engine.engine}")
    if engine.device not in ("auto", "cpu"):
        asked.append(f"--device {engine.device}")
    if engine.precision not in ("auto", "fp32"):
        asked.append(f"--precision {engine.precision}")
    if asked:
        raise NStreamError(f"{', '.join(asked)} needs PyTorch, which this install lacks: {TORCH_HINT} "
                           "(without it: ONNX Runtime, fp32, on the CPU)")


def default_output(info: Any, style: str) -> str:
    """``result/<input>_<style>.mp4``, or the input image's own suffix for a single image."""
    suffix = {"image": info.extra.get("suffix", ".png")}.get(info.kind, ".mp4")
    return str(Path("result") / f"{info.name}_{style}{suffix}")


def expected_frames(count: int | None, loops: int, max_frames: int | None) -> int | None:
    """Frames the run will produce, for the progress bar: the file's count, looped, capped."""
    total = count * loops if count else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return total


def network_note(spec: str, style: Any) -> str:
    """Which network runs, and why when the device chose it (a bare style name on a CPU means lite)."""
    arch = style.meta.get("arch", style.family)
    chosen = style.family == "checkpoint" and style.name != spec and style.name.endswith("_lite")
    if not chosen:
        return arch
    from nstream.models.registry import list_styles

    if spec in {entry.name for entry in list_styles()}:
        return f"{arch} (for the CPU; -s {spec}_johnson for johnson)"
    return f"{arch} (the only network of {spec})"


def _build_engine(style: Any, config: EngineConfig, threads: int | None) -> Any:
    """The style's network in the engine asked for, or (no PyTorch) its shipped graph in ONNX Runtime."""
    if style.model is None:
        from nstream.engines.graph_engine import GraphEngine

        return GraphEngine(style.graph, threads, reason="light install (no PyTorch): ONNX Runtime on the shipped graph")
    from nstream.engines import create_engine

    return create_engine(config.engine, style.model, config.device, config.precision, threads=threads)


def _runs_on_cpu(config: EngineConfig, light: bool) -> bool:
    """Whether the network runs on the CPU (a bare style name then means its lite network)."""
    if light:
        return True
    if config.engine in ("tensorrt", "torch2trt"):
        return False
    from nstream.devices import pick_device

    return pick_device(config.device).type == "cpu"


def _network_stage(config: StreamConfig, live: bool, info: dict[str, Any]) -> tuple[StyleSwitch, list[Any], list[Any], int]:
    """Every style loaded and every network's engine built now, so that a switch mid-stream costs
    nothing; styles of one conditioned network (paintings, tf26) share its engine and differ only in
    the style vector. Returns (the switch, its stylizers, the styles, workers)."""
    from nstream.models.style_spec import load_style, predict_vector
    from nstream.stylizer import Stylizer

    light = not torch_installed()
    if light:
        check_light(config.engine)
    cpu = _runs_on_cpu(config.engine, light)
    styles = [load_style(spec, prefer_lite=cpu, light=light, painter=config.style.painting_network)
              for spec in config.style.styles]
    workers, threads = plan_workers(config.engine.workers, config.engine.threads, live, cpu)
    built: dict[object, Any] = {}
    for style in styles:
        if style.network_key not in built:
            built[style.network_key] = _build_engine(style, config.engine, threads)
    sty = config.style
    stylizers = [Stylizer(built[style.network_key], size=sty.size, scale=sty.scale, preserve_colors=sty.preserve_colors,
                          strength=sty.strength, style=style.vector, dark_guard=sty.dark_guard,
                          own_style=predict_vector if style.family == "magenta" else None) for style in styles]
    switch = StyleSwitch([style.name for style in styles], stylizers, info, every=sty.every, live=live, morph=sty.morph)
    return switch, stylizers, styles, workers


def open_configured_source(config: StreamConfig) -> Source:
    """The configured source; a file pushed to a server goes at its own rate (not as fast as it encodes)."""
    from nstream.media.sinks import PUSH_SCHEMES
    from nstream.media.sources import open_source

    src = config.source
    push = any(spec.lower().startswith(PUSH_SCHEMES) for spec in config.outputs)
    return open_source(src.input, live=src.live, fps=src.fps, width=src.width, height=src.height,
                       open_timeout=src.timeout, read_timeout=src.read_timeout, reconnect_for=src.reconnect_for,
                       rtsp_transport=src.rtsp_transport, start=src.start, duration=src.duration, loops=src.loop,
                       paced=push, audio=src.audio,
                       motion_vectors=config.temporal.flow == "vectors" and config.temporal.strength > 0)


def open_outputs(config: StreamConfig, source: Source, outputs: Sequence[str], sinks: list[Sink]) -> None:
    """Open each output into ``sinks`` (so the caller closes what opened when a later one fails)."""
    from nstream.media.sinks import open_sink

    enc = config.encode
    for spec in outputs:
        sink = open_sink(spec, codec=enc.codec, crf=enc.crf, preset=enc.preset, bitrate=enc.bitrate, pix_fmt=enc.pix_fmt)
        sinks.append(sink)
        sink.open(source.info)


def _describe(config: StreamConfig, info: Any, engine: Any, outputs: list[str], workers: int, style: Any
              ) -> dict[str, Any]:
    """What the dashboard, the summary and --stats-json say about the run beside the figures."""
    return {keys.ENGINE: engine.name, keys.PRECISION: engine.precision, keys.DEVICE: str(engine.device),
            keys.ENGINE_REASON: engine.reason, keys.RESOLUTION: f"{info.width}x{info.height}",
            keys.INPUT: info.name, keys.LIVE: info.live, keys.KIND: info.kind, keys.OUTPUTS: outputs,
            keys.WORKERS: workers, keys.NETWORK: network_note(config.style.styles[0], style),
            keys.FRAME_COUNT: expected_frames(info.frame_count, config.source.loop, config.source.max_frames)}


def build_session(config: StreamConfig, source: Source | None = None, sinks: Sequence[Sink] | None = None) -> Session:
    """Open and connect everything ``config`` asks for; ``source``/``sinks`` replace the configured ones.

    Engines are built before the source opens (a live source would otherwise buffer while a TensorRT
    plan builds). On any error everything opened so far is closed again and the error raised."""
    from nstream.media.sources import is_live_input
    from nstream.stylizer import padded_size
    from nstream.temporal.config import build_temporal_stage

    config.validate()
    reuse_frame_buffers()  # frame-sized blocks kept for the next frame (nstream/memory.py)
    live = source.info.live if source is not None else is_live_input(config.source.input, config.source.live)
    stats = PipelineStats()
    switch, stylizers, styles, workers = _network_stage(config, live, stats.info)
    network = NetworkStage(switch)
    opened: list[Sink] = []
    try:
        source = source or open_configured_source(config)
        info = source.info
        outputs = [] if sinks is not None else (config.outputs or [default_output(info, styles[0].name)])
        if sinks is None:
            open_outputs(config, source, outputs, opened)
        else:
            opened = list(sinks)
        for engine in {id(s.engine): s.engine for s in stylizers}.values():
            engine.warmup(*padded_size(*stylizers[0].work_size(info.height, info.width)))
        engine = stylizers[0].engine
        stats.info.update(_describe(config, info, engine, outputs, workers, styles[0]))
        for sink in opened:
            sink.on_key = switch.on_key  # keys pressed in a preview window switch styles
        stages: list[Stage] = [network]
        if info.kind != "image":  # one image has no history to blend with
            temporal = build_temporal_stage(config.temporal, info.live, stats, str(engine.device))
            if temporal is not None:
                stages.append(temporal)
        pipeline = Pipeline(source, stages, opened, queue_size=config.queue_size, stats=stats,
                            max_frames=config.source.max_frames, workers=workers)
    except BaseException:
        for sink in opened:
            sink.close()
        if source is not None:
            source.close()
        network.close()
        raise
    return Session(config, source, stages, opened, outputs, stats, switch, pipeline)
