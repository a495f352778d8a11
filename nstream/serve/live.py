"""Live in the browser: the webcam over WebRTC (aiortc) through the same session as ``stream.py``.

The browser's video track feeds :class:`TrackSource`, a live :class:`~nstream.media.sources.Source`
that keeps only the newest frame (latest frame wins: a slow server drops frames, counted, instead of
falling behind); :class:`TrackSink` hands each stylized frame to :class:`StylizedTrack`, the track sent
back. Between them runs :func:`nstream.session.build_session`'s pipeline: the network stage, the
temporal stage, the style switch (buttons on the page call ``select``; paintings and tf26 styles
morph). The page reads the live figures (fps, latency, drops) from ``GET /api/live/{id}``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nstream.errors import NStreamError, first_line
from nstream.frames import Frame, SourceInfo
from nstream.media.sinks import Sink
from nstream.media.sources import Source
from nstream.serve.jobs import new_id

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)  # RTP's video clock
FIRST_FRAME_S = 30.0  # how long a new connection may take to send its first frame
RECEIVE_DROP = "receive busy"


class LatestSlot:
    """A one-item hand-over between threads where a new item replaces an unread one."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.item: Any = None
        self.closed = False

    def put(self, item: Any) -> bool:
        """Store ``item``; True when it replaced one nobody had taken (a dropped frame)."""
        with self.cond:
            replaced = self.item is not None
            self.item = item
            self.cond.notify_all()
            return replaced

    def get(self, timeout: float) -> Any:
        """The newest item (taking it), or None after ``timeout`` seconds or once closed and empty."""
        with self.cond:
            if self.item is None and not self.closed:
                self.cond.wait(timeout)
            item, self.item = self.item, None
            return item

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class TrackSource(Source):
    """The browser's camera as a live source: frames the receiving task put in the slot, newest only;
    every frame is scaled to the first one's size (the browser may change resolution mid-call)."""

    def __init__(self, slot: LatestSlot, width: int, height: int) -> None:
        super().__init__()
        self.slot = slot
        self.info = SourceInfo(name="webcam (WebRTC)", width=width, height=height, rate=Fraction(30), time_base=TIME_BASE,
                               live=True, kind="webrtc")

    def frames(self) -> Iterator[Frame]:
        import cv2

        index, last_pts, first = 0, None, None
        while not self.stop_event.is_set():
            item = self.slot.get(0.5)
            if item is None:
                if self.slot.closed:
                    break
                continue
            vframe, received = item
            image = vframe.to_ndarray(format="rgb24")
            if image.shape[:2] != (self.info.height, self.info.width):
                image = cv2.resize(image, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
            seconds = float(vframe.pts * vframe.time_base) if vframe.pts is not None and vframe.time_base else received
            first = seconds if first is None else first
            pts = round((seconds - first) / TIME_BASE)
            pts = pts if last_pts is None or pts > last_pts else last_pts + 1
            last_pts = pts
            yield Frame(image, index, pts, TIME_BASE, received)
            index += 1

    def stop(self) -> None:
        super().stop()
        self.slot.close()


class StylizedTrack:
    """Factory for the outgoing aiortc track (aiortc is imported only when live is used)."""

    @staticmethod
    def create(loop: asyncio.AbstractEventLoop) -> Any:
        from aiortc import MediaStreamTrack
        from aiortc.mediastreams import MediaStreamError

        class _Track(MediaStreamTrack):
            kind = "video"

            def __init__(self) -> None:
                super().__init__()
                self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

            def offer(self, frame: Any) -> None:
                """From any thread: the newest stylized frame (one still waiting is replaced)."""
                loop.call_soon_threadsafe(self._put, frame)

            def _put(self, frame: Any) -> None:
                if self.queue.full():
                    self.queue.get_nowait()
                self.queue.put_nowait(frame)

            async def recv(self) -> Any:
                frame = await self.queue.get()
                if frame is None:
                    self.stop()
                    raise MediaStreamError
                return frame

        return _Track()


class TrackSink(Sink):
    """The pipeline's output into the outgoing track, as PyAV frames with the input's timing."""

    name = "webrtc"

    def __init__(self, track: Any) -> None:
        self.track = track

    def write(self, frame: Frame) -> None:
        import av

        image = frame.image
        if image.shape[0] % 2 or image.shape[1] % 2:  # 4:2:0 encoders want even sizes
            image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        self.track.offer(out)

    def close(self) -> None:
        self.track.offer(None)


class LiveSession:
    """One browser's call: the peer connection, the slot its frames go through, the nstream session."""

    def __init__(self, manager: LiveManager, pc: Any, out: Any) -> None:
        self.id = new_id()
        self.manager, self.pc, self.out = manager, pc, out
        self.slot = LatestSlot()
        self.state, self.error = "connecting", None
        self.session: Any = None
        self.source: TrackSource | None = None
        self.drops = 0  # frames replaced in the slot before the pipeline took them
        self.thread: threading.Thread | None = None
        self.ended = threading.Event()

    async def receive(self, track: Any) -> None:
        """Take every frame the browser sends as soon as it decodes (so none queue up in aiortc), keep the
        newest in the slot; the first one starts the pipeline at its size."""
        from aiortc.mediastreams import MediaStreamError

        try:
            first = await asyncio.wait_for(track.recv(), FIRST_FRAME_S)
            self.start(first.width, first.height)
            self.slot.put((first, time.monotonic()))
            while not self.ended.is_set():
                frame = await track.recv()
                if self.slot.put((frame, time.monotonic())):
                    self.drops += 1
                    if self.session is not None:
                        self.session.stats.drop(RECEIVE_DROP)
        except (MediaStreamError, asyncio.TimeoutError):
            if self.state == "connecting":
                self.fail("no video arrived from the browser: is the camera allowed and on?")
        finally:
            self.slot.close()

    def start(self, width: int, height: int) -> None:
        self.source = TrackSource(self.slot, width, height)
        self.state = "starting"
        self.thread = threading.Thread(target=self.run, name=f"live-{self.id[:6]}", daemon=True)
        self.thread.start()

    def run(self) -> None:
        """The pipeline thread: build the session with every offered style loaded, run until the call ends."""
        from nstream.session import build_session

        try:
            session = build_session(self.manager.stream_config(), source=self.source, sinks=[TrackSink(self.out)])
            self.session = session
            if self.ended.is_set():
                session.stop()
            self.state = "running"
            session.run()
        except NStreamError as exc:
            self.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - reported on the page, the server keeps serving
            log.exception("live session %s failed", self.id)
            self.fail(f"internal error: {first_line(exc)}")
        finally:
            if self.state != "failed":
                self.state = "ended"
            self.out.offer(None)

    def fail(self, message: str) -> None:
        self.state, self.error = "failed", message
        self.ended.set()

    def stop(self) -> None:
        self.ended.set()
        self.slot.close()
        if self.source is not None:
            self.source.stop()
        if self.session is not None:
            self.session.stop()

    def status(self) -> dict[str, Any]:
        """What the page shows: state, styles, and the live figures of the pipeline."""
        figures: dict[str, Any] = {}
        if self.session is not None:
            snap = self.session.stats.snapshot()
            figures = {"fps": snap["stages"]["encode"]["fps_now"], "latency_ms": snap["latency_ms"],
                       "dropped": snap["dropped"], "dropped_by_reason": snap["dropped_by_reason"],
                       "frames_in": snap["frames_in"], "frames_out": snap["frames_out"],
                       "resolution": snap.get("resolution"), "style": snap.get("style"), "engine": snap.get("engine")}
        return {"id": self.id, "state": self.state, "error": self.error, "styles": self.manager.style_ids(),
                "names": self.manager.names(),
                "active": self.session.switch.active if self.session is not None else 0, "figures": figures}


class LiveManager:
    """The live calls this server holds (at most ``max_live``), and how each one's session is configured."""

    def __init__(self, config: Any, gallery: Any) -> None:
        from nstream.serve.gallery import named_styles

        self.config, self.gallery = config, gallery
        self.sessions: dict[str, LiveSession] = {}
        if config.live_styles:
            self.choices = named_styles(config.live_styles)
        else:  # 26 buttons of the multi-style network would bury the others; --live-style names them
            self.choices = [choice for choice in gallery.choices if choice.kind != "tf26"] or gallery.choices[:8]

    def available(self) -> bool:
        try:
            import aiortc  # noqa: F401
        except ImportError:
            return False
        return True

    def style_ids(self) -> list[str]:
        return [choice.id for choice in self.choices]

    def names(self) -> list[str]:
        return [choice.name for choice in self.choices]

    def stream_config(self) -> Any:
        """Every offered style loaded up front (a switch then costs nothing), temporal blending on."""
        from nstream.config import EngineConfig, SourceConfig, StreamConfig, StyleConfig

        return StreamConfig(source=SourceConfig(input="webrtc", live=True), style=StyleConfig(styles=self.style_ids()),
                            engine=EngineConfig(engine=self.config.engine, device=self.config.device))

    def forget_ended(self, keep: int = 8) -> None:
        """Drop all but the ``keep`` newest ended calls (their status stays readable a while after the end)."""
        ended = [live_id for live_id, live in self.sessions.items() if live.state in ("ended", "failed")]
        for live_id in ended[: max(0, len(ended) - keep)]:
            del self.sessions[live_id]

    def active(self) -> list[LiveSession]:
        return [live for live in self.sessions.values() if live.state in ("connecting", "starting", "running")]

    async def offer(self, sdp: str, kind: str) -> LiveSession:
        """Answer the browser's offer: receive its video, send the stylized video back on the same transceiver."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: this server is reached directly
        live = LiveSession(self, pc, StylizedTrack.create(asyncio.get_running_loop()))
        self.forget_ended()
        self.sessions[live.id] = live

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video":
                pc.addTrack(live.out)
                asyncio.ensure_future(live.receive(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(live.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:  # noqa: BLE001 - any SDP the browser sent that aiortc cannot take
            await self.close(live.id)
            raise
        return live

    async def close(self, live_id: str) -> bool:
        live = self.sessions.get(live_id)
        if live is None:
            return False
        live.stop()
        await live.pc.close()
        if live.state in ("connecting", "starting", "running") and live.thread is None:
            live.state = "ended"
        return True

    async def close_all(self) -> None:
        for live_id in list(self.sessions):
            await self.close(live_id)
        for live in list(self.sessions.values()):
            if live.thread is not None:
                await asyncio.to_thread(live.thread.join, 10)


def _manager(request: Request) -> LiveManager:
    return request.app.state.live


async def start_live(request: Request) -> Response:
    """``POST /api/live``: ``{"sdp", "type"}`` (the browser's offer) → the answer and the call's id."""
    manager = _manager(request)
    if not manager.available():
        return JSONResponse({"error": "live needs aiortc: pip install 'nstream[serve]'"}, status_code=501)
    try:
        body = await request.json()
        sdp, kind = str(body["sdp"]), str(body.get("type", "offer"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return JSONResponse({"error": 'send the browser\'s offer as {"sdp": "...", "type": "offer"}'}, status_code=400)
    if kind != "offer" or "m=video" not in sdp:
        return JSONResponse({"error": "the offer must be an SDP offer with a video track"}, status_code=400)
    if len(manager.active()) >= manager.config.max_live:
        return JSONResponse({"error": f"the server is busy: it takes {manager.config.max_live} live call(s) at once "
                                      "(--max-live); try again when one has ended"}, status_code=429)
    try:
        live = await manager.offer(sdp, kind)
    except Exception as exc:  # noqa: BLE001 - a malformed offer is the client's error
        return JSONResponse({"error": f"cannot use this offer ({first_line(exc)})"}, status_code=400)
    local = live.pc.localDescription
    return JSONResponse({"id": live.id, "sdp": local.sdp, "type": local.type, "styles": manager.style_ids(),
                         "names": manager.names()}, status_code=201)


def _live(request: Request) -> LiveSession | None:
    return _manager(request).sessions.get(request.path_params["live_id"])


def _gone(request: Request) -> JSONResponse:
    return JSONResponse({"error": f"no live call {request.path_params['live_id']!r}"}, status_code=404)


async def live_status(request: Request) -> Response:
    live = _live(request)
    return _gone(request) if live is None else JSONResponse(live.status())


async def live_style(request: Request) -> Response:
    """``POST /api/live/{id}/style``: ``{"index": N}`` or ``{"style": ID}`` selects the style (a morph
    between paintings or tf26 styles)."""
    live = _live(request)
    if live is None:
        return _gone(request)
    ids = live.manager.style_ids()
    try:
        body = await request.json()
        index = ids.index(body["style"]) if "style" in body else int(body["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return JSONResponse({"error": f'send {{"index": 0..{len(ids) - 1}}} or {{"style": one of {ids}}}'}, status_code=400)
    if not 0 <= index < len(ids):
        return JSONResponse({"error": f"style index {index} is out of range: 0..{len(ids) - 1}"}, status_code=400)
    if live.session is None:
        return JSONResponse({"error": "the call is not running yet"}, status_code=409)
    live.session.switch.select(index)
    return JSONResponse(live.status())


async def stop_live(request: Request) -> Response:
    if not await _manager(request).close(request.path_params["live_id"]):
        return _gone(request)
    return Response(status_code=204)


def routes() -> list[Route]:
    return [Route("/api/live", start_live, methods=["POST"]),
            Route("/api/live/{live_id}", live_status, methods=["GET"]),
            Route("/api/live/{live_id}", stop_live, methods=["DELETE"]),
            Route("/api/live/{live_id}/style", live_style, methods=["POST"])]
