"""A stylizing session's settings as typed objects, each with its defaults and validation in one place.

``stream.py`` maps its arguments onto :class:`StreamConfig`; a Python caller, the web server and a
cluster worker build one directly and hand it to :func:`nstream.session.build_session`. Nothing here
imports PyTorch, so the light install (ONNX Runtime only) uses the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nstream.errors import NStreamError
from nstream.models.registry import DEFAULT_STYLE
from nstream.temporal.config import TemporalConfig

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "bigbuckbunny.mp4"
RTSP_TRANSPORTS = ("tcp", "udp")


@dataclass
class SourceConfig:
    """Where frames come from: a file, image(s), camera index or URL, and how to read it."""

    input: str = str(DEMO_CLIP)
    live: bool = False  # pace a file at its own rate and treat it as live
    fps: float | None = None  # image sequences; requested rate for a webcam
    width: int | None = None  # requested webcam size
    height: int | None = None
    max_frames: int | None = None
    start: float | None = None  # video files: seconds in
    duration: float | None = None  # video files: seconds to stylize
    loop: int = 1  # play a video file this many times
    audio: bool = True  # copy the input's audio where the output can hold it
    rtsp_transport: str = "tcp"
    timeout: float = 10.0  # seconds to wait when connecting
    read_timeout: float = 5.0  # seconds without data before a reconnect
    reconnect_for: float = 30.0  # seconds to keep reconnecting a dropped stream

    def validate(self) -> SourceConfig:
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise NStreamError(f"--rtsp-transport {self.rtsp_transport}: use tcp or udp")
        if self.loop < 1:
            raise NStreamError(f"--loop {self.loop}: use 1 or more")
        if self.max_frames is not None and self.max_frames < 1:
            raise NStreamError(f"--max-frames {self.max_frames}: use 1 or more")
        return self


@dataclass
class EncodeConfig:
    """Video encoding of file and push outputs; None: the sink's own default for the container."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    bitrate: str | None = None
    pix_fmt: str | None = None


@dataclass
class StyleConfig:
    """Which styles, switched and morphed how, and what the stylize stage does around the network."""

    styles: list[str] = field(default_factory=lambda: [DEFAULT_STYLE])
    morph: float = 0.5  # seconds a switch between two conditioned styles takes (0 cuts)
    every: float | None = None  # move on to the next style every so many seconds of the stream
    strength: float = 1.0  # 0 content .. 1 style
    preserve_colors: bool = False
    dark_guard: bool = True
    size: tuple[int, int] | None = None  # stylize at (width, height)
    scale: float | None = None  # stylize at this fraction of the input size
    painting_network: str | None = None  # a magenta_lite checkpoint for image styles (None: the arbitrary network)

    def validate(self) -> StyleConfig:
        from nstream.styleswitch import check_every

        if not self.styles:
            raise NStreamError("no style given")
        if self.scale is not None and not 0.05 <= self.scale <= 4:
            raise NStreamError(f"--scale {self.scale} is out of range: use 0.05 to 4")
        if self.size is not None and min(self.size) < 4:
            raise NStreamError("size must be at least 4x4")
        if not self.morph >= 0:
            raise NStreamError(f"--morph {self.morph}: give 0 or more seconds")
        if not 0.0 <= self.strength <= 1.0:
            raise NStreamError(f"--strength {self.strength}: must be between 0 and 1")
        check_every(self.every, len(self.styles))
        return self


@dataclass
class EngineConfig:
    """Which inference engine runs the network, where, how precise, with how many threads and workers."""

    engine: str = "auto"
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    precision: str = "auto"
    threads: int | None = None  # network threads (default: all cores)
    workers: int | None = None  # frames of a file at once on a CPU (default 2 with 2+ cores)

    def validate(self) -> EngineConfig:
        from nstream.engines import ENGINES, PRECISIONS

        if self.engine not in ENGINES:
            raise NStreamError(f"unknown engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.precision not in PRECISIONS:
            raise NStreamError(f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.workers is not None and self.workers < 1:
            raise NStreamError(f"--workers {self.workers}: use 1 or more")
        if self.threads is not None and self.threads < 1:
            raise NStreamError(f"--threads {self.threads}: use 1 or more")
        return self


@dataclass
class StreamConfig:
    """One stylizing session: source, styles, engine, temporal blend and outputs.

    ``outputs`` empty: ``result/<input>_<style>.mp4`` (or the image's own suffix)."""

    source: SourceConfig = field(default_factory=SourceConfig)
    outputs: list[str] = field(default_factory=list)
    style: StyleConfig = field(default_factory=StyleConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    queue_size: int = 4  # frames each queue holds for file sources

    def validate(self) -> StreamConfig:
        """Raise one user-facing error for the first setting out of range; return self."""
        self.source.validate()
        self.style.validate()
        self.engine.validate()
        self.temporal.validate()
        if self.queue_size < 1:
            raise NStreamError(f"--queue-size {self.queue_size}: use 1 or more")
        return self
