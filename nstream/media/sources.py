"""Frame sources: video files and network streams (PyAV), webcams (OpenCV), still images.

Every source yields :class:`~nstream.frames.Frame` objects and describes itself with a
:class:`~nstream.frames.SourceInfo` before the first frame, so sinks can open early.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from nstream.errors import NStreamError, first_line
from nstream.frames import Frame, SourceInfo
from nstream.media.formats import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "udp://", "srt://", "tcp://")
NETWORK_TIME_BASE = Fraction(1, 90000)
INDEX_TIMED_FORMATS = {"avi", "h264", "hevc", "mjpeg", "rawvideo", "mpeg4", "m4v"}


class Source:
    """Base: ``info`` is ready after construction; ``frames()`` yields until the end or ``stop``."""

    info: SourceInfo

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.warnings: list[str] = []
        #: the input ended short of what it promised (truncated or damaged): said in ``warnings`` too
        self.truncated = False

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        """Release devices and files; safe to call twice."""


def _rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Apply a display-matrix rotation (counter-clockwise degrees), as players do."""
    turns = (round(degrees / 90)) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


class _PyAVDecoder:
    """Shared demux/decode loop for files and network streams."""

    def __init__(self, container: Any, where: str) -> None:
        self.container = container
        if not container.streams.video:
            raise NStreamError(f"{where} has no video stream")
        self.video = container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = container.streams.audio[0] if container.streams.audio else None
        ctx = self.video.codec_context
        if not ctx.width or not ctx.height:
            raise NStreamError(f"{where}: the video stream has no frame size (corrupt or unsupported)")
        self.corrupt = 0  # packets the demuxer flagged as damaged (a file cut mid-packet)
        self.reached = 0.0  # seconds: the latest end of any packet demuxed, for the truncation check

    def decoded(self, stop: threading.Event) -> Iterator[tuple[Any, list[Any]]]:
        """Yield (video frame, audio packets demuxed before it); trailing audio rides on the last frame."""
        streams = [s for s in (self.video, self.audio) if s is not None]
        pending_audio: list[Any] = []
        held = None
        for packet in self.container.demux(*streams):
            if stop.is_set():
                break
            if packet.is_corrupt:
                self.corrupt += 1
            if packet.pts is not None and packet.time_base:
                self.reached = max(self.reached, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            if packet.stream.type == "audio":
                if packet.dts is not None and packet.size:
                    pending_audio.append(packet)
                continue
            for vframe in packet.decode():
                if held is not None:
                    yield held
                held = (vframe, pending_audio)
                pending_audio = []
        if held is not None:
            held[1].extend(pending_audio)
            yield held


@dataclass
class _Cursor:
    """Where ``FileSource.frames`` is across loops: the next output index, the last pts given out, and
    the first frame's pts and wall time (pacing)."""

    index: int = 0
    last_pts: int | None = None
    first_pts: int | None = None
    started: float = field(default_factory=time.monotonic)


class VectorTap:
    """``tap(vframe)``: the decoder's motion vectors of a PyAV frame (:mod:`nstream.temporal.vectors`),
    or None: when not enabled, for frames without any, and from the first B-frame on (a B-frame's
    and its anchors' vectors may reach several frames back, and nothing says how far)."""

    def __init__(self, enabled: bool, video: Any) -> None:
        self.enabled = enabled
        if enabled:
            video.codec_context.options = {**video.codec_context.options, "flags2": "+export_mvs"}

    def __call__(self, vframe: Any) -> Any:
        from nstream.temporal.vectors import CodedVectors, frame_vectors

        if not self.enabled:
            return None
        if int(vframe.pict_type) == B_FRAME:
            self.enabled = False
            log.info("the stream has B-frames: its motion vectors are not used, the flow runs on every frame")
            return None
        vectors = frame_vectors(vframe)
        return None if vectors is None else CodedVectors(vectors, vframe.height, vframe.width)


B_FRAME = 3  # AV_PICTURE_TYPE_B


class FileSource(Source):
    """A video file (mp4, mkv, mov, webm, avi, GIF, ...) read through PyAV, frame-exact."""

    def __init__(self, path: str, live: bool = False, keep_audio: bool = True, start: float | None = None,
                 duration: float | None = None, loops: int = 1, paced: bool | None = None,
                 motion_vectors: bool = False) -> None:
        """``start`` and ``duration`` (seconds) cut a part out of the file: it is sought, frames and
        audio outside the part are left out, and its timestamps start at 0. ``loops`` plays it that
        many times; ``paced`` (default: ``live``) goes at the file's own rate without dropping frames
        (a push of a file). ``motion_vectors``: the decoder exports its motion vectors and frames carry
        them (:class:`VectorTap`)."""
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise NStreamError(f"input not found: {path}")
        if self.path.is_dir():
            raise NStreamError(f"input is a folder with no images: {path}")
        try:
            self.container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise NStreamError(f"cannot read {path} as video ({first_line(exc)}): is it a complete video file?") from None
        try:
            self.decoder = _PyAVDecoder(self.container, str(path))
        except NStreamError:
            self.container.close()
            raise
        stream = self.decoder.video
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        time_base = stream.time_base or Fraction(1, 90000)
        self.live = live
        self.paced = live if paced is None else paced
        self.loops = max(1, loops)
        # AVI and raw elementary streams store no presentation times (B-frames come out with
        # packet-order pts): they are constant-rate, so the frame index gives the true timing.
        self.index_timing = self.container.format.name.split(",")[0] in INDEX_TIMED_FORMATS
        width, height = ctx.width, ctx.height
        self.rotation = self._probe_rotation()
        self.tap = VectorTap(motion_vectors and not self.rotation, self.decoder.video)
        if self.rotation % 180:
            width, height = height, width
        container = self.container
        self.origin = float(container.start_time / av.time_base) if container.start_time is not None else 0.0
        self.length = float(container.duration / av.time_base) if container.duration else None
        self.start, self.duration = self._check_cut(start, duration)
        self.info = SourceInfo(
            name=self.path.stem, width=width, height=height, rate=Fraction(rate), time_base=Fraction(time_base),
            live=live, kind="file", frame_count=self._expected_count(stream.frames or None, float(rate)),
            audio_stream=self.decoder.audio if keep_audio else None,
            extra={"codec": ctx.name, "pix_fmt": ctx.format.name if ctx.format else None, "rotation": self.rotation},
        )

    @property
    def cutting(self) -> bool:
        return self.start > 0 or self.duration is not None

    def _check_cut(self, start: float | None, duration: float | None) -> tuple[float, float | None]:
        if start is not None and not start >= 0:
            raise NStreamError(f"--start {start}: use 0 or more seconds")
        if duration is not None and not duration > 0:
            raise NStreamError(f"--duration {duration}: use more than 0 seconds")
        start = start or 0.0
        if start and self.length is not None and start >= self.length:
            raise NStreamError(f"--start {start:g} is past the end of {self.path} ({self.length:.2f} s long)")
        return start, duration

    def _expected_count(self, frames: int | None, rate: float) -> int | None:
        """The file's frame count, or the part's (estimated from the rate) when cutting."""
        if not self.cutting:
            return frames
        seconds = self.length - self.start if self.length is not None else None
        if self.duration is not None:
            seconds = min(seconds, self.duration) if seconds is not None else self.duration
        return max(1, round(seconds * rate)) if seconds is not None else None

    def _probe_rotation(self) -> int:
        """Rotation from the first frame's display matrix, read through a second, throwaway open."""
        try:
            with av.open(str(self.path), metadata_errors="ignore") as probe:
                for vframe in probe.decode(video=0):
                    return int(round(getattr(vframe, "rotation", 0) or 0))
        except av.error.FFmpegError as exc:
            raise NStreamError(f"cannot decode {self.path} ({first_line(exc)}): corrupt or unsupported video") from None
        raise NStreamError(f"{self.path} has no decodable video frames")

    def frames(self) -> Iterator[Frame]:
        """Every decodable frame (of the part, when cutting), in order; ``loops`` > 1 replays it with
        continuing pts. A file that ends short of what it promised is stylized to where it breaks, and
        said in ``warnings`` (``truncated`` set)."""
        cursor = _Cursor()
        frame_step = max(1, round(1 / (self.info.rate * self.info.time_base)))
        for loop in range(self.loops):
            offset = 0
            if loop:
                self.container.close()
                self.container = av.open(str(self.path), metadata_errors="ignore")
                self.decoder = _PyAVDecoder(self.container, str(self.path))
                self.tap = VectorTap(self.tap.enabled, self.decoder.video)
                offset = cursor.last_pts + frame_step
            if not (yield from self._decode_pass(loop, offset, cursor)):
                return
            if self.truncated:
                break
        if cursor.index == 0:
            raise NStreamError(f"{self.path} has no decodable video frames")

    def _decode_pass(self, loop: int, offset: int, cursor: _Cursor) -> Generator[Frame, None, bool]:
        """One pass over the file (or its part), frames in order; returns False when stopped. Each frame is
        held until the next one is decoded, so the audio demuxed in between rides on the right frame."""
        tb = self.info.time_base
        loop_first, held, decoded, ended = None, None, 0, False
        begin, end = self._cut_range()
        carry: list[Any] = []  # audio demuxed with frames before the part
        try:
            for vframe, audio in self.decoder.decoded(self.stop_event):
                pts = vframe.pts
                if pts is None or self.index_timing:  # no usable pts: constant rate by frame index
                    pts = round(decoded / (self.info.rate * tb))
                decoded += 1
                if begin is not None and pts < begin:
                    carry.extend(audio)
                    continue
                if end is not None and pts >= end:
                    if held is not None:
                        held[2].extend(audio)
                    ended = True
                    break
                if carry:
                    audio, carry = carry + audio, []
                if loop_first is None:
                    loop_first = pts
                out_pts = offset + pts - (loop_first if loop or self.cutting else 0)
                if cursor.last_pts is not None and out_pts <= cursor.last_pts:
                    continue  # a repeated timestamp cannot be encoded: the frame is a duplicate
                cursor.last_pts = out_pts
                image = _rotate(vframe.to_ndarray(format="rgb24"), self.rotation)
                vectors = self.tap(vframe)
                if held is not None:
                    if (frame := self._release(held, loop, loop_first, end, cursor)) is None:
                        return False
                    yield frame
                held = (image, out_pts, list(audio), vectors)
        except av.error.FFmpegError as exc:
            if cursor.index == 0 and held is None:
                raise NStreamError(f"cannot decode {self.path} ({first_line(exc)}): corrupt or unsupported video") from None
            self.truncated = True
            self.warnings.append(f"{self.path.name}: decoding stopped after frame {cursor.index + (held is not None)} "
                                 f"({first_line(exc)}); the input is truncated or corrupt")
            ended = True
        if held is not None:
            if (frame := self._release(held, loop, loop_first, end, cursor)) is None:
                return False
            yield frame
        if self.stop_event.is_set():
            return False
        if not ended:
            self._check_complete(end)
        return True

    def _release(self, held: tuple[Any, int, list[Any], Any], loop: int, loop_first: int | None, end: int | None,
                 cursor: _Cursor) -> Frame | None:
        """The held frame as the next output frame (None when stopped while pacing); the cursor moves on."""
        frame = self._emit(held, cursor.index, loop, loop_first, end, cursor.started, cursor.first_pts)
        if frame is not None:
            cursor.first_pts = held[1] if cursor.first_pts is None else cursor.first_pts
            cursor.index += 1
        return frame

    def _cut_range(self) -> tuple[int | None, int | None]:
        """The part to keep, in the video stream's pts (None: no bound); seeks to its start."""
        if not self.cutting:
            return None, None
        tb = self.info.time_base
        begin = (self.decoder.video.start_time or 0) + round(self.start / tb)
        end = begin + round(self.duration / tb) if self.duration is not None else None
        if self.start and not self.index_timing:
            try:  # to the keyframe at or before the start; the frames before it are decoded and left out
                self.container.seek(begin, stream=self.decoder.video)
            except av.error.FFmpegError as exc:
                log.info("%s: seeking failed (%s); decoding from the beginning", self.path, first_line(exc))
                self.container.seek(0)
        if self.index_timing:
            begin = round(self.start / tb)
            end = begin + round(self.duration / tb) if self.duration is not None else None
        return begin, end

    def _emit(self, held: tuple[Any, int, list[Any], Any], index: int, loop: int, loop_first: int | None,
              end: int | None, started: float, first_pts: int | None) -> Frame | None:
        """The frame for ``held``, paced if asked (None when stopped while waiting); when cutting, its
        audio is trimmed to the part and shifted by as much as the video."""
        image, pts, audio, vectors = held
        if loop:
            audio = []
        elif self.cutting and loop_first is not None:
            audio = _shift_audio(audio, float(loop_first * self.info.time_base),
                                 None if end is None else float(end * self.info.time_base))
        if self.paced:
            first = pts if first_pts is None else first_pts
            delay = started + float((pts - first) * self.info.time_base) - time.monotonic()
            if delay > 0 and self.stop_event.wait(delay):
                return None
        return Frame(image, index, pts, self.info.time_base, time.monotonic(), audio=audio, vectors=vectors)

    def _check_complete(self, end: int | None) -> None:
        """After the demuxer ran out: damaged packets, or the packets ending well before the length the
        container states (or the end of the part asked for), mean the file was cut short."""
        decoder, name = self.decoder, self.path.name
        if decoder.corrupt:
            self.truncated = True
            self.warnings.append(f"{name}: {decoder.corrupt} damaged packet(s) at the end; the input is truncated "
                                 "or corrupt, and the output stops where it breaks")
            return
        if self.length is None:
            return
        expected = self.length
        if end is not None:
            expected = min(expected, float(end * self.info.time_base) - self.origin)
        reached = decoder.reached - self.origin
        if expected - reached > max(0.5, 2 / float(self.info.rate)):
            self.truncated = True
            self.warnings.append(f"{name}: the data ends at {reached:.2f} s of the {expected:.2f} s its header states; "
                                 "the input is truncated, and the output stops there too")

    def close(self) -> None:
        self.container.close()


class NetworkSource(Source):
    """rtsp/rtmp/http(s)/udp/srt/tcp through PyAV: low-latency options, reconnect with back-off.

    RTSP goes over TCP unless asked otherwise. Every connection gets ``open_timeout`` seconds
    to answer and ``read_timeout`` seconds between packets (PyAV's interrupt timeouts, plus
    FFmpeg's own socket timeout where the protocol has one). A stream that ends or stalls is
    reopened with exponential back-off for up to ``reconnect_for`` seconds, and the frames go
    on. Timestamps stay monotonic across reconnects: each connection's pts start from the
    wall-clock time of its first frame (at least a frame after the last one) and then follow
    the stream's own clock, so an outage shows as a pause of its real length.
    """

    #: protocols whose ``timeout`` option is a socket I/O timeout in microseconds
    #: (for rtmp it is a listen timeout, and srt counts differently: they rely on PyAV's)
    SOCKET_TIMEOUT_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp", "tcp")

    def __init__(self, url: str, open_timeout: float = 10.0, read_timeout: float = 5.0,
                 reconnect_for: float = 30.0, rtsp_transport: str = "tcp", motion_vectors: bool = False) -> None:
        super().__init__()
        self.url = url
        self.motion_vectors = motion_vectors
        self.scheme = url.split("://", 1)[0].lower()
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.reconnect_for = reconnect_for
        # Short probing, no decoder delay. Not fflags=nobuffer: it throws away the packets read
        # while probing, and with them the first keyframe, so nothing decodes until the next one
        # (never, for a long GOP); the probed frames come out at once and the live queue drops them.
        self.options = {"flags": "low_delay", "probesize": "500000", "analyzeduration": "1000000"}
        if self.scheme in ("rtsp", "rtsps"):
            self.options["rtsp_transport"] = rtsp_transport
        if self.scheme in self.SOCKET_TIMEOUT_SCHEMES:
            self.options["timeout"] = str(max(1, round(read_timeout * 1_000_000)))
        if self.scheme == "udp":
            self.options["overrun_nonfatal"] = "1"  # a burst overruns the socket buffer: drop, do not fail
        self.reconnects = 0
        self.container: Any = None
        self.container = self._connect()
        try:
            decoder = _PyAVDecoder(self.container, url)
        except NStreamError:
            self.container.close()
            raise
        ctx = decoder.video.codec_context
        rate = decoder.video.average_rate or decoder.video.guessed_rate or Fraction(25)
        self.info = SourceInfo(name=_stream_name(url), width=ctx.width, height=ctx.height, rate=Fraction(rate),
                               time_base=NETWORK_TIME_BASE, live=True, kind="network", extra={"codec": ctx.name})
        self.started = time.monotonic()

    def _connect(self) -> Any:
        """Open the stream once, or raise NStreamError with one line that says why not."""
        started = time.monotonic()
        try:
            return av.open(self.url, options=self.options, timeout=(self.open_timeout, self.read_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            waited = time.monotonic() - started
            raise NStreamError(self._why(exc, waited)) from None

    def _why(self, exc: BaseException, waited: float) -> str:
        reason = getattr(exc, "strerror", None) or first_line(exc)
        if isinstance(exc, av.error.ExitError) or waited >= 0.9 * self.open_timeout:
            return (f"no answer from stream {self.url} within {self.open_timeout:g} s: is the server up and the URL right? "
                    "(--timeout waits longer)")
        if isinstance(exc, av.error.ProtocolNotFoundError):
            return f"cannot open stream {self.url}: this FFmpeg build cannot read {self.scheme}:// streams"
        if isinstance(exc, ConnectionRefusedError):
            return f"cannot open stream {self.url} (connection refused): is the server up and the port right?"
        return f"cannot open stream {self.url} ({reason}): is the server up and the URL right?"

    def frames(self) -> Iterator[Frame]:
        index, last_pts = 0, None
        while not self.stop_event.is_set():
            container, anchor, why = self.container, None, "the stream ended"
            try:
                video = container.streams.video[0] if container.streams.video else None
                if video is None:
                    raise NStreamError("no video stream")
                video.thread_type = "SLICE"  # frame threads would hold frames back: latency
                tap = VectorTap(self.motion_vectors, video)
                for vframe in self._decoded(container, video):
                    now = time.monotonic()
                    if vframe.pts is None:
                        pts = round((now - self.started) / NETWORK_TIME_BASE)
                    else:
                        seconds = float(vframe.pts * vframe.time_base)
                        if anchor is None:  # this connection's clock starts at the wall clock
                            start = now - self.started
                            if last_pts is not None:
                                start = max(start, float(last_pts * NETWORK_TIME_BASE + 1 / self.info.rate))
                            anchor = (seconds, start)
                        pts = round((anchor[1] + seconds - anchor[0]) / NETWORK_TIME_BASE)
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1
                    last_pts = pts
                    image = vframe.to_ndarray(format="rgb24")
                    if image.shape[:2] != (self.info.height, self.info.width):
                        image = _resize(image, self.info.width, self.info.height)
                    yield Frame(image, index, pts, NETWORK_TIME_BASE, now, vectors=tap(vframe))
                    index += 1
            except (av.error.FFmpegError, OSError, NStreamError) as exc:
                why = getattr(exc, "strerror", None) or first_line(exc)
            finally:
                container.close()
            if self.stop_event.is_set():
                break
            log.warning("stream %s interrupted after frame %d (%s): reconnecting", self.url, index, why)
            self.warnings.append(f"stream {self.url} interrupted after frame {index} ({why})")
            self.container = self._reconnect(index)
            if self.container is None:
                break
        if index == 0 and not self.stop_event.is_set():
            raise NStreamError(f"stream {self.url} sent no video frames: is the camera or server streaming?")

    def _decoded(self, container: Any, video: Any) -> Iterator[Any]:
        """Video frames as soon as they decode (no frame held back); a packet that does not
        decode is skipped, as a live stream's damaged packet should be."""
        for packet in container.demux(video):
            if self.stop_event.is_set():
                return
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                continue
            yield from decoded

    def _reconnect(self, index: int) -> Any:
        """Try again with exponential back-off for ``reconnect_for`` seconds; None when it gives up."""
        deadline, delay, why = time.monotonic() + self.reconnect_for, 0.5, "no time to retry"
        while time.monotonic() + min(delay, 0.1) < deadline and not self.stop_event.is_set():
            if self.stop_event.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                return None
            try:
                container = self._connect()
            except NStreamError as exc:
                why = str(exc)
                delay = min(delay * 2, 8.0)
                continue
            self.reconnects += 1
            log.warning("reconnected to %s after frame %d", self.url, index)
            return container
        if not self.stop_event.is_set():
            self.warnings.append(f"gave up reconnecting to {self.url} after {self.reconnect_for:g} s; last try: {why}")
        return None

    def close(self) -> None:
        if self.container is not None:
            self.container.close()


def _shift_audio(packets: list[Any], begin: float, end: float | None) -> list[Any]:
    """Audio packets of ``[begin, end)`` seconds, their timestamps moved ``begin`` seconds earlier."""
    kept = []
    for packet in packets:
        tb = packet.time_base
        if packet.pts is None or not tb:
            continue
        seconds = float(packet.pts * tb)
        if seconds < begin - 1e-6 or (end is not None and seconds >= end):
            continue
        shift = round(begin / tb)
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        kept.append(packet)
    return kept


def _stream_name(url: str) -> str:
    tail = url.split("://", 1)[-1].rstrip("/").split("/")[-1].split("?")[0]
    return tail or "stream"


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class WebcamSource(Source):
    """A local camera by index through OpenCV; pts are capture times (ms since start)."""

    def __init__(self, index: int, width: int | None = None, height: int | None = None, fps: float | None = None) -> None:
        super().__init__()
        import cv2

        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            self.capture.release()
            raise NStreamError(f"no camera at index {index}: check that it is connected and not in use")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
            if value:
                self.capture.set(prop, value)
        ok, first = self.capture.read()
        if not ok:
            self.capture.release()
            raise NStreamError(f"camera {index} opened but gave no frame")
        self.first = first
        rate = self.capture.get(cv2.CAP_PROP_FPS) or fps or 30
        self.info = SourceInfo(name=f"camera{index}", width=first.shape[1], height=first.shape[0],
                               rate=Fraction(rate).limit_denominator(1001), time_base=Fraction(1, 1000),
                               live=True, kind="webcam")

    def frames(self) -> Iterator[Frame]:
        import cv2

        start, index, bgr = time.monotonic(), 0, self.first
        while not self.stop_event.is_set():
            if bgr is None:
                ok, bgr = self.capture.read()
                if not ok:
                    self.warnings.append(f"camera stopped giving frames after frame {index}")
                    break
            now = time.monotonic()
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, round((now - start) * 1000), Fraction(1, 1000), now)
            index, bgr = index + 1, None

    def close(self) -> None:
        self.capture.release()


class ImageSource(Source):
    """One image, a folder of images or a glob: each a frame, in name order.

    Images of other sizes than the first are resized to it for video sinks; image sinks
    name their outputs after ``Frame.name``.
    """

    def __init__(self, files: list[Path], rate: Fraction = Fraction(25), live: bool = False) -> None:
        super().__init__()
        self.files = files
        first = read_image(files[0])
        self.first = first
        kind = "image" if len(files) == 1 else "images"
        name = files[0].stem if kind == "image" else (files[0].parent.name or "images")
        self.live = live
        self.info = SourceInfo(name=name, width=first.shape[1], height=first.shape[0], rate=rate,
                               time_base=1 / rate, live=live, kind=kind, frame_count=len(files),
                               extra={"suffix": files[0].suffix.lower()})

    def frames(self) -> Iterator[Frame]:
        start = time.monotonic()
        for index, path in enumerate(self.files):
            if self.stop_event.is_set():
                break
            image = self.first if index == 0 else read_image(path)
            if image.shape[:2] != (self.info.height, self.info.width) and self.info.kind == "images":
                image = _resize(image, self.info.width, self.info.height)
            if self.live and self.stop_event.wait(max(0.0, start + index / float(self.info.rate) - time.monotonic())):
                break
            yield Frame(image, index, index, self.info.time_base, time.monotonic(), name=path.stem)


def read_image(path: str | Path, what: str = "image") -> np.ndarray:
    """An image file as a writable HxWx3 uint8 RGB array, EXIF orientation applied; ``what`` names it
    in the one-line error (torch.from_numpy warns on a read-only array, hence the copy)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    file = Path(path)
    if not file.exists():
        raise NStreamError(f"{what} not found: {path}")
    if file.is_dir():
        raise NStreamError(f"{what} {path} is a folder: give an image file")
    try:
        with Image.open(file) as image:
            return np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise NStreamError(f"cannot read {what} {path} ({first_line(exc)}): is it an image file?") from None


def _image_files(spec: str) -> list[Path] | None:
    """Files an image spec names (one image, a folder, a glob), or None if it is not one."""
    path = Path(spec)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if any(ch in spec for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    return None


def _is_camera(spec: str) -> bool:
    return spec.isdigit()


def _is_network(spec: str) -> bool:
    return spec.lower().startswith(NETWORK_SCHEMES)


def is_live_input(spec: str, live: bool = False) -> bool:
    """Whether ``--input`` is a camera or a network stream, or a file paced as live (``--live``),
    known before anything is opened (:func:`open_source` picks its source by the same tests)."""
    return live or _is_camera(spec) or _is_network(spec)


def open_source(spec: str, *, live: bool = False, fps: float | None = None, width: int | None = None,
                height: int | None = None, open_timeout: float = 10.0, read_timeout: float = 5.0,
                reconnect_for: float = 30.0, rtsp_transport: str = "tcp", start: float | None = None,
                duration: float | None = None, loops: int = 1, paced: bool = False, audio: bool = True,
                motion_vectors: bool = False) -> Source:
    """Pick the source for ``--input``: a camera index, a URL, images or a video file (``start`` and
    ``duration``, in seconds, cut a part out of a video file; ``loops`` replays it; ``paced`` goes at
    its own rate; ``audio`` False leaves its sound out; ``motion_vectors``: files and network streams
    attach the decoder's motion vectors to their frames, webcams and images have none)."""
    not_a_file = _is_camera(spec) or _is_network(spec) or _image_files(spec) is not None
    if (start is not None or duration is not None) and not_a_file:
        raise NStreamError(f"--start and --duration work with video files only, not {spec}")
    if loops > 1 and not_a_file:
        raise NStreamError("--loop works with video files only")
    if _is_camera(spec):
        return WebcamSource(int(spec), width, height, fps)
    if _is_network(spec):
        return NetworkSource(spec, open_timeout, read_timeout, reconnect_for, rtsp_transport, motion_vectors)
    files = _image_files(spec)
    if files is not None:
        if not files:
            raise NStreamError(f"no images found at {spec}")
        if len(files) == 1 and not files[0].exists():
            raise NStreamError(f"input not found: {spec}")
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(25)
        return ImageSource(files, rate, live)
    if not os.path.exists(spec):
        raise NStreamError(f"input not found: {spec}")
    return FileSource(spec, live=live, keep_audio=audio, start=start, duration=duration, loops=loops,
                      paced=live or paced, motion_vectors=motion_vectors)
