"""Frame sinks: files and RTSP/RTMP pushes (PyAV), images, a preview window, a virtual webcam.

A sink is opened with the source's :class:`~nstream.frames.SourceInfo`, receives frames in
order through ``write`` and is always ``close``d, also after errors and Ctrl-C, so that what
it produced stays playable.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from nstream.errors import NStreamError, first_line
from nstream.frames import Frame, SourceInfo
from nstream.media.formats import IMAGE_SUFFIXES, VIDEO_CONTAINERS

log = logging.getLogger(__name__)

DEFAULT_CODECS = {"webm": "libvpx-vp9", "gif": "gif"}
# Codecs a container can technically hold but players refuse there: transcoded like unsupported ones.
NON_STANDARD_AUDIO = {"mp4": {"vorbis"}, "mov": {"vorbis"}}
AUDIO_FALLBACK = {"webm": "libopus", "mp4": "aac", "mov": "aac", "matroska": "aac", "avi": "aac",
                  "mpegts": "aac", "flv": "aac", "rtsp": "aac"}
# Fragmented MP4, a fragment a second at most: everything up to the last fragment is complete
# on disk (flushed as written, not held in a 256 KiB buffer), so even a killed run leaves a
# playable file.
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof", "frag_duration": "1000000",
              "flush_packets": "1"}
PUSH_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://")
# Seconds an RTSP receiver may take to answer or to accept data. RTMP pushes have no such bound:
# PyAV opens their connection with no options and no interrupt callback (see AVSink._connect).
PUSH_TIMEOUT = 10.0


def check_writable(target: str | Path, folder: bool = False) -> None:
    """Make sure a file (or, with ``folder``, files inside a folder) can be written at ``target`` before
    anything runs: create the folder, then create, write and remove a probe file beside the target.
    Raises NStreamError with one line that names the target and says why not."""
    path = Path(target)
    where = path if folder else path.parent
    if not folder and path.is_dir():
        raise NStreamError(f"cannot write output {target}: it is a folder; name a file")
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NStreamError(f"cannot create output folder {where} ({exc.strerror or exc}): "
                           "pick a folder you can write to") from None
    try:
        handle, probe = tempfile.mkstemp(prefix=".nstream-probe-", dir=where)
        try:
            os.write(handle, b"probe")
        finally:
            os.close(handle)
            os.unlink(probe)
        if not folder and path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise NStreamError(f"cannot write output {target} ({exc.strerror or exc}): "
                           "pick a folder you can write to") from None


def check_display() -> None:
    """A preview window needs a display: on Linux an X11 or Wayland one (Qt aborts the process without)."""
    if not sys.platform.startswith("linux"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return
    raise NStreamError("-o window needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set: "
                       "write to a file instead (-o out.mp4), or run inside a desktop session")


class Sink:
    name = "sink"
    #: set by a sink (the preview window) when the user asks to quit
    quit: threading.Event | None = None
    #: a network push (paced, low latency) rather than a local output
    push = False
    #: called with each key pressed in a window the sink shows (the style switch listens)
    on_key: Callable[[int], None] | None = None

    def open(self, info: SourceInfo) -> None:
        """Prepare for frames of ``info``'s size and timing."""

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and finalize; must be safe after a failed open or a partial run."""

    def pump(self) -> None:
        """Main-thread work (GUI events), called often while the pipeline runs."""


class NullSink(Sink):
    """Discards frames: for benchmarks and for measuring the pipeline alone."""

    name = "null"

    def write(self, frame: Frame) -> None:
        pass


def _copy_packet(packet: Any) -> Any:
    """A fresh packet with the same payload and timing: muxing rescales packets in place,
    and one demuxed packet may go to several sinks."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
    copy.duration = packet.duration
    copy.is_keyframe = packet.is_keyframe
    return copy


class _AudioPassthrough:
    """Copies the input's audio packets into the output; transcodes only where the container
    cannot hold the input's codec (e.g. AAC into WebM) or holds it where players refuse it
    (Vorbis in MP4 becomes AAC)."""

    def __init__(self, container: Any, source_stream: Any, fmt: str) -> None:
        self.container = container
        codec = source_stream.codec_context.name
        self.copy = codec in container.supported_codecs and codec not in NON_STANDARD_AUDIO.get(fmt, ())
        if self.copy:
            self.stream = container.add_stream_from_template(source_stream)
            self.decoder = None
        else:
            target = AUDIO_FALLBACK.get(fmt, container.default_audio_codec)
            src = source_stream.codec_context
            self.decoder = av.CodecContext.create(codec, "r")
            if src.extradata:
                self.decoder.extradata = src.extradata
            self.decoder.sample_rate = src.sample_rate
            self.decoder.layout = src.layout
            rate = 48000 if target == "libopus" else src.sample_rate
            self.stream = container.add_stream(target, rate=rate, layout=src.layout.name)
            log.info("audio: transcoding %s to %s (%s does not hold %s well)", codec, target, fmt, codec)

    def write(self, packets: list[Any]) -> None:
        for packet in packets:
            if self.copy:
                copy = _copy_packet(packet)
                copy.stream = self.stream
                self.container.mux(copy)
            else:
                for decoded in self.decoder.decode(_copy_packet(packet)):
                    decoded.pts = None  # the encoder's resampler re-times the samples
                    self.container.mux(self.stream.encode(decoded))

    def flush(self) -> None:
        if not self.copy:
            self.container.mux(self.stream.encode(None))


class AVSink(Sink):
    """Encodes frames with PyAV into a file or a push URL (rtsp/rtmp), keeping input timing."""

    def __init__(self, target: str, *, fmt: str | None = None, codec: str | None = None, crf: int | None = None,
                 preset: str | None = None, bitrate: str | None = None, pix_fmt: str | None = None,
                 keep_audio: bool = True, low_latency: bool = False, options: dict[str, str] | None = None) -> None:
        self.target = target
        self.name = target
        self.fmt = fmt
        self.codec = codec
        self.crf, self.preset, self.bitrate, self.pix_fmt = crf, preset, bitrate, pix_fmt
        self.keep_audio = keep_audio
        self.low_latency = low_latency
        self.options = dict(options or {})
        self.container = None
        self.video = None
        self.audio: _AudioPassthrough | None = None
        self.last_pts: int | None = None
        self.frames_written = 0
        self.failed = False  # a write or the finalization failed: the file is incomplete or absent
        self.crop: tuple[int, int] | None = None
        self.push = target.lower().startswith(PUSH_SCHEMES)

    def open(self, info: SourceInfo) -> None:
        fmt = self.fmt
        try:
            self.container = av.open(self.target, "w", format=fmt, container_options=self.options or None)
        except (av.error.FFmpegError, OSError) as exc:
            raise NStreamError(f"cannot open output {self.target} ({first_line(exc)})") from None
        fmt = self.container.format.name.split(",")[0]
        codec = self.codec or DEFAULT_CODECS.get(fmt, "libx264")
        try:
            self.video = self.container.add_stream(codec, rate=info.rate)
        except (av.error.FFmpegError, ValueError) as exc:
            raise NStreamError(f"output {self.target}: unknown or unusable codec {codec!r} ({first_line(exc)})") from None
        video = self.video
        width, height = info.width, info.height
        if self.push and not self.pix_fmt:
            # Stream players expect 4:2:0, which needs even sizes: drop an odd last row/column.
            width, height = max(2, width - width % 2), max(2, height - height % 2)
        self.crop = (height, width) if (width, height) != (info.width, info.height) else None
        video.width, video.height = width, height
        video.time_base = info.time_base
        video.codec_context.time_base = info.time_base
        video.pix_fmt = self.pix_fmt or _pick_pix_fmt(codec, width, height)
        codec_options: dict[str, str] = {}
        if codec in ("libx264", "libx265"):
            codec_options["crf"] = str(self.crf if self.crf is not None else 18)
            codec_options["preset"] = self.preset or ("veryfast" if self.low_latency else "medium")
            if self.low_latency:
                codec_options.update({"tune": "zerolatency", "bf": "0", "g": str(max(1, round(float(info.rate) * 2)))})
        elif codec == "libvpx-vp9":
            codec_options.update({"crf": str(self.crf if self.crf is not None else 32), "b": "0", "row-mt": "1",
                                  "deadline": "realtime" if self.low_latency else "good", "cpu-used": "4"})
        if self.bitrate:
            video.bit_rate = _parse_bitrate(self.bitrate)
            codec_options.pop("crf", None)
        video.options = codec_options
        if self.keep_audio and info.audio_stream is not None and fmt != "gif":
            try:
                self.audio = _AudioPassthrough(self.container, info.audio_stream, fmt)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("output %s: audio dropped (%s)", self.target, first_line(exc))
                self.audio = None
        if self.push:
            self._connect()

    def _connect(self) -> None:
        """Pushes connect now, not at the first frame, so a missing receiver is one clear error
        before anything runs (the rtsp muxer connects when it writes its header). A refused or
        unreachable RTMP server fails here too, but one that accepts the connection and then
        never answers is waited for: PyAV gives that connect no timeout."""
        started = time.monotonic()
        try:
            self.container.start_encoding()
        except (av.error.FFmpegError, OSError) as exc:
            self._abandon()
            reason = getattr(exc, "strerror", None) or first_line(exc)
            timeout = int(self.options.get("timeout", 0)) / 1_000_000
            if timeout and time.monotonic() - started >= 0.9 * timeout:
                reason = f"no answer within {timeout:g} s"
            raise NStreamError(f"cannot push to {self.target} ({reason}): is a server there, accepting pushes "
                               "to that path?") from None

    def _abandon(self) -> None:
        """Drop a push whose connection failed: nothing to flush, nothing more to send."""
        container, self.container = self.container, None
        try:
            container.close()
        except (av.error.FFmpegError, OSError):
            pass

    def write(self, frame: Frame) -> None:
        pts = frame.pts
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        image = frame.image if self.crop is None else np.ascontiguousarray(frame.image[: self.crop[0], : self.crop[1]])
        vframe = av.VideoFrame.from_ndarray(image, format="rgb24")
        vframe.pts, vframe.time_base = pts, frame.time_base
        try:
            if self.audio is not None and frame.audio:
                self.audio.write(frame.audio)
            self.container.mux(self.video.encode(vframe))
        except (av.error.FFmpegError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or first_line(exc)
            if not self.push:
                self.failed = True
                raise NStreamError(f"writing {self.target} failed after {self.frames_written} frames ({reason}): "
                                   "is the disk full, or the output gone?") from None
            self._abandon()
            raise NStreamError(f"push to {self.target} broke off after {self.frames_written} frames ({reason}): "
                               "the receiver closed the connection or went away") from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoders and finalize the file; a failure to do so is an NStreamError (the output
        may be incomplete), raised once the container is closed."""
        if self.container is None:
            return
        container, self.container = self.container, None
        failure: BaseException | None = None
        try:
            if self.video is not None and self.frames_written:
                container.mux(self.video.encode(None))
            if self.audio is not None:
                self.audio.flush()
        except (av.error.FFmpegError, OSError) as exc:
            failure = exc
        try:
            container.close()
        except (av.error.FFmpegError, OSError) as exc:
            failure = failure or exc
        if failure is None and not self.push and self.frames_written and not _written(self.target):
            failure = OSError(0, "the file is missing or empty after closing")
        if failure is None:
            return
        if self.failed:  # the write that failed was reported already
            log.info("output %s: closing after a failed write (%s)", self.target, first_line(failure))
        elif self.push:
            log.warning("output %s: closing failed (%s)", self.target, first_line(failure))
        else:
            self.failed = True
            reason = getattr(failure, "strerror", None) or first_line(failure)
            raise NStreamError(f"finishing {self.target} failed after {self.frames_written} frames ({reason}): "
                               "is the disk full, or the output gone?")


def _written(target: str) -> bool:
    """Whether a local output holds something after closing (a device such as /dev/null counts)."""
    path = Path(target)
    try:
        return not path.is_file() or path.stat().st_size > 0 if path.exists() else False
    except OSError:
        return False


def _pick_pix_fmt(codec: str, width: int, height: int) -> str:
    if codec == "gif":
        return "rgb8"
    if codec in ("libx264", "libx265", "libvpx-vp9", "libvpx") and (width % 2 or height % 2):
        return "yuv444p"  # 4:2:0 needs even sizes; 4:4:4 keeps the exact frame size
    return "yuv420p"


def _parse_bitrate(text: str) -> int:
    units = {"k": 1_000, "m": 1_000_000}
    try:
        if text[-1].lower() in units:
            return int(float(text[:-1]) * units[text[-1].lower()])
        return int(text)
    except (ValueError, IndexError):
        raise NStreamError(f"bad bitrate {text!r}: use e.g. 4M or 800k") from None


class ImageSink(Sink):
    """Still output: one image for one input image; a folder of images for a sequence."""

    def __init__(self, target: str) -> None:
        self.target = Path(target)
        self.name = target
        self.single = self.target.suffix.lower() in IMAGE_SUFFIXES

    def open(self, info: SourceInfo) -> None:
        check_writable(self.target, folder=not self.single)
        self.suffix = info.extra.get("suffix", ".png") if info.extra.get("suffix") in IMAGE_SUFFIXES else ".png"

    def write(self, frame: Frame) -> None:
        from PIL import Image

        path = self.target if self.single else self.target / f"{frame.name or f'{frame.index:06d}'}{self.suffix}"
        try:
            Image.fromarray(frame.image).save(path)
        except (OSError, ValueError) as exc:
            path.unlink(missing_ok=True)  # a half-written image is worse than none
            raise NStreamError(f"cannot write image {path} ({getattr(exc, 'strerror', None) or exc})") from None


class WindowSink(Sink):
    """An OpenCV preview window; q or Esc asks the pipeline to stop.

    GUI toolkits want the main thread, so ``write`` (encode thread) only hands over the latest
    frame and ``pump`` (main thread) draws it and reads keys. A slow screen never blocks the
    pipeline: the window shows the newest frame.
    """

    name = "window"

    def __init__(self, title: str = "nstream") -> None:
        self.title = title
        self.quit = threading.Event()
        self.latest: np.ndarray | None = None
        self.lock = threading.Lock()
        self.closed = False
        self.shown = False

    def open(self, info: SourceInfo) -> None:
        import cv2

        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            cv2.resizeWindow(self.title, info.width, info.height)
        except cv2.error as exc:
            raise NStreamError(f"cannot open a preview window ({first_line(exc)}): is there a display?") from None
        self.shown = True

    def write(self, frame: Frame) -> None:
        with self.lock:
            self.latest = frame.image

    def pump(self) -> None:
        import cv2

        if not self.shown:
            return
        with self.lock:
            image, self.latest = self.latest, None
        if self.closed:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self.shown = False
            return
        if image is not None:
            cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1)
        if key < 0:
            return
        if key & 0xFF in (ord("q"), 27):
            self.quit.set()
        elif self.on_key is not None:
            self.on_key(key & 0xFF)

    def close(self) -> None:
        self.closed = True


class VirtualCamSink(Sink):
    """A virtual webcam through pyvirtualcam (the ``virtualcam`` extra), for video calls."""

    name = "virtualcam"

    def open(self, info: SourceInfo) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise NStreamError("virtualcam output needs pyvirtualcam: pip install 'nstream[virtualcam]'") from None
        try:
            self.camera = pyvirtualcam.Camera(width=info.width, height=info.height, fps=float(info.rate))
        except RuntimeError as exc:
            raise NStreamError(f"cannot start the virtual camera ({first_line(exc)})") from None

    def write(self, frame: Frame) -> None:
        self.camera.send(np.ascontiguousarray(frame.image))

    def close(self) -> None:
        camera = getattr(self, "camera", None)
        if camera is not None:
            camera.close()


def open_sink(spec: str, *, codec: str | None = None, crf: int | None = None, preset: str | None = None,
              bitrate: str | None = None, pix_fmt: str | None = None, keep_audio: bool = True) -> Sink:
    """Pick the sink for one ``--output``: null, window, virtualcam, a push URL, an image or a file."""
    lowered = spec.lower()
    if lowered == "null":
        return NullSink()
    if lowered == "window":
        check_display()
        return WindowSink()
    if lowered == "virtualcam":
        return VirtualCamSink()
    common = {"codec": codec, "crf": crf, "preset": preset, "bitrate": bitrate, "pix_fmt": pix_fmt}
    if lowered.startswith(("rtsp://", "rtsps://")):
        # the rtsp muxer's timeout (microseconds) bounds its connect, its handshake and every write
        options = {"rtsp_transport": "tcp", "timeout": str(round(PUSH_TIMEOUT * 1_000_000))}
        return AVSink(spec, fmt="rtsp", low_latency=True, keep_audio=keep_audio, options=options, **common)
    if lowered.startswith(("rtmp://", "rtmps://")):
        return AVSink(spec, fmt="flv", low_latency=True, keep_audio=keep_audio, **common)
    suffix = Path(spec).suffix.lower()
    if suffix in IMAGE_SUFFIXES or spec.endswith("/") or Path(spec).is_dir():
        check_writable(spec, folder=suffix not in IMAGE_SUFFIXES)
        return ImageSink(spec)
    if suffix not in VIDEO_CONTAINERS:
        known = ", ".join(sorted(VIDEO_CONTAINERS | dict.fromkeys(IMAGE_SUFFIXES)))
        raise NStreamError(f"unsupported output type {suffix or '(none)'!r} for {spec}: use one of {known}")
    check_writable(spec)
    fmt = VIDEO_CONTAINERS[suffix]
    options = dict(FRAGMENTED) if fmt in ("mp4", "mov") else {}
    return AVSink(spec, fmt=fmt, keep_audio=keep_audio, options=options, **common)

