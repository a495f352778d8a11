"""Network input and push output against real servers on 127.0.0.1.

Input: Debian's gst-rtsp-server (``tests/rtsp_server.py``, run by the system python3 with gi)
serves clips made here; ``stream.py`` reads them, also across a server restart. A paced
MPEG-TS sender (PyAV) feeds udp://, Python's own HTTP server serves http://, and nginx's RTMP
module (Debian's libnginx-mod-rtmp, run in the foreground on a free port) relays a paced FLV
push to stream.py's rtmp:// input. Push:
FFmpeg's own listen modes (rtsp ``rtsp_flags=listen``, rtmp ``listen=1``) receive what
``stream.py`` sends, in a thread of this process. Every server, receiver and ``stream.py`` started here is
stopped here; everything is bounded by timeouts and runs on loopback only.
"""

from __future__ import annotations

import functools
import http.server
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, free_port, make_clip, moving_pattern, probe, reaped, run_stream

pytestmark = [pytest.mark.network, pytest.mark.slow]  # each starts a local server or listens on loopback

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Wait until something listens on 127.0.0.1:port, without connecting to it (FFmpeg's
    listen modes take exactly one connection, so a probe connection would use it up)."""
    wanted = f"0100007F:{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                    return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@functools.lru_cache(maxsize=1)
def gst_rtsp_missing() -> str | None:
    """Why the RTSP test server cannot run here, or None when it can."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing (gst-rtsp-server runs under the system python)"
    check = ('import gi; gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0"); '
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             'missing = [e for e in ("filesrc", "qtdemux", "h264parse", "rtph264pay") if not Gst.ElementFactory.find(e)]; '
             'print(" ".join(missing))')
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {SYSTEM_PYTHON} ({exc})"
    if result.returncode != 0:
        return (f"{SYSTEM_PYTHON} cannot import gi's GstRtspServer (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0; "
                "tests/run.sh does it)")
    if result.stdout.strip():
        return f"GStreamer elements missing: {result.stdout.strip()} (install gstreamer1.0-plugins-good and -bad)"
    return None


class RtspServer:
    """One ``tests/rtsp_server.py`` process; its event lines (ready, client, play, closed) are
    collected by a reader thread so the test can wait for them with a timeout."""

    def __init__(self, clip: Path, port: int, mount: str = "clip") -> None:
        self.url = f"rtsp://127.0.0.1:{port}/{mount}"
        self.events: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), str(clip), str(port), mount],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.wait_for("ready", 60)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(line.strip())
        self.events.put("exited")

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"RTSP server: no {event!r} within {timeout} s") from None
            if got == event:
                return
            if got == "exited":
                raise AssertionError(f"RTSP server exited ({self.proc.wait()}): {self.proc.stderr.read()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()


@pytest.fixture
def rtsp_servers():
    """Starts RTSP servers (``start(clip, port)``) and kills every one of them at the end."""
    reason = gst_rtsp_missing()
    if reason:
        pytest.skip(reason)
    started: list[RtspServer] = []

    def start(clip: Path, port: int | None = None) -> RtspServer:
        server = RtspServer(clip, port or free_port())
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()


def flat_clip(path: Path, frames: int, size: tuple[int, int], rgb: tuple[int, int, int], fps: int = 25) -> Path:
    """An H.264 clip of one flat colour, easy to tell apart from make_clip's moving pattern."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def output_frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return [f.to_ndarray(format="rgb24") for f in frames], [f.pts for f in frames]


def strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def assert_stream_read(result, out, max_frames: int, size: tuple[int, int]) -> None:
    """stream.py read a network stream: exit 0, no traceback, some frames of the right size, pts rising."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    info = probe(out)
    assert 0 < info["frames"] <= max_frames
    assert (info["width"], info["height"]) == size
    assert strictly_increasing(info["pts"])


# -- input ---------------------------------------------------------------------------------


def test_reads_rtsp_stream(tmp_path, style_model, rtsp_servers):
    clip = make_clip(tmp_path / "cam.mp4", frames=125, size=(80, 64), audio=False)
    server = rtsp_servers(clip)
    out = tmp_path / "out.mp4"
    result = run_stream("-i", server.url, "-s", str(style_model), "-o", str(out), "--max-frames", "20",
                        "--reconnect-for", "5", "--no-dashboard", timeout=180)
    assert_stream_read(result, out, 20, (80, 64))


def test_rtsp_server_restart_mid_stream(tmp_path, style_model, rtsp_servers):
    """The server dies mid-stream and comes back on the same port: stream.py reconnects and the
    output goes on with the new server's frames, pts still increasing. ``--strength 0`` passes
    the pictures through the whole pipeline unstylized (the seeded test network paints
    everything black), so each output frame shows which server it came from."""
    textured = make_clip(tmp_path / "before.mp4", frames=250, size=(64, 48), audio=False)
    flat = flat_clip(tmp_path / "after.mp4", frames=250, size=(64, 48), rgb=(200, 40, 90))
    port = free_port()
    first = rtsp_servers(textured, port)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", first.url, "-s", str(style_model),
                             "-o", str(out), "--max-frames", "150", "--reconnect-for", "60", "--read-timeout", "3",
                             "--strength", "0", "--no-dashboard"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    with reaped(proc):
        first.wait_for("play", 120)
        time.sleep(2)  # the client takes frames for a while: ~50 at 25 fps, far fewer than --max-frames
        first.kill()
        second = rtsp_servers(flat, port)
        second.wait_for("play", 90)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "reconnected to" in stderr, stderr
    images, pts = output_frames(out)
    assert strictly_increasing(pts), pts
    # textured frames from the first server, then flat ones from the second, never mixed
    kinds = ["flat" if image.astype(np.float32).std(axis=(0, 1)).max() < 4 else "textured" for image in images]
    assert kinds.count("textured") > 0, kinds
    assert kinds.count("flat") >= 5, kinds
    assert kinds == sorted(kinds, key=lambda kind: kind == "flat"), kinds


class LiveSender(threading.Thread):
    """A live stream as a camera or encoder sends it (MPEG-TS over UDP, FLV to an RTMP server):
    paced at its frame rate, a keyframe every half second, until stopped."""

    def __init__(self, url: str, size: tuple[int, int], container: str, fps: int = 25) -> None:
        super().__init__(daemon=True)
        self.url, self.size, self.container, self.fps = url, size, container, fps
        self.stopped = threading.Event()
        self.sent = 0
        self.error: Exception | None = None

    def run(self) -> None:
        width, height = self.size
        try:
            with av.open(self.url, "w", format=self.container, timeout=30) as out:
                video = out.add_stream("libx264", rate=self.fps)
                video.width, video.height, video.pix_fmt = width, height, "yuv420p"
                video.options = {"tune": "zerolatency", "preset": "ultrafast", "g": str(self.fps // 2)}
                started = time.monotonic()
                while not self.stopped.wait(max(0.0, started + self.sent / self.fps - time.monotonic())):
                    frame = av.VideoFrame.from_ndarray(moving_pattern(self.sent, width, height), format="rgb24")
                    frame.pts = self.sent
                    out.mux(video.encode(frame))
                    self.sent += 1
        except av.error.FFmpegError as exc:  # the server going away ends the send; the test reports it
            self.error = exc


def read_while_sending(sender: LiveSender, url: str, out: Path, style_model: Path) -> subprocess.CompletedProcess:
    """stream.py reads ``url`` (15 frames at most) while ``sender`` feeds it; the sender stops after."""
    sender.start()
    try:
        return run_stream("-i", url, "-s", str(style_model), "-o", str(out), "--max-frames", "15", "--reconnect-for", "5",
                          "--no-dashboard", timeout=180)
    finally:
        sender.stopped.set()
        sender.join(timeout=30)


def test_reads_udp_stream(tmp_path, style_model):
    url = f"udp://127.0.0.1:{free_port()}"
    result = read_while_sending(LiveSender(url + "?pkt_size=1316", (80, 48), "mpegts"), url, tmp_path / "out.mp4", style_model)
    assert_stream_read(result, tmp_path / "out.mp4", 15, (80, 48))


NGINX = "/usr/sbin/nginx"
NGINX_RTMP = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


@pytest.fixture
def rtmp_server(tmp_path):
    """nginx with its RTMP module on a free loopback port: publishers push to rtmp://.../live/NAME,
    players read the same URL. Runs in the foreground as this user, killed at the end."""
    if not (os.path.exists(NGINX) and NGINX_RTMP.is_file()):
        pytest.skip("nginx with its RTMP module is missing (apt-get install nginx-core libnginx-mod-rtmp; tests/run.sh does it)")
    port = free_port()
    root = tmp_path / "nginx"
    (root / "logs").mkdir(parents=True)
    (root / "nginx.conf").write_text(
        f"load_module {NGINX_RTMP};\ndaemon off;\nmaster_process off;\npid {root}/nginx.pid;\n"
        f"error_log {root}/logs/error.log warn;\nevents {{ worker_connections 64; }}\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}\n")
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "logs" / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        yield f"rtmp://127.0.0.1:{port}/live"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()


def test_reads_rtmp_stream(tmp_path, style_model, rtmp_server):
    """A live FLV stream pushed to a real RTMP server (nginx-rtmp), read back by stream.py."""
    url = f"{rtmp_server}/cam"
    sender = LiveSender(url, (80, 48), "flv")
    result = read_while_sending(sender, url, tmp_path / "out.mp4", style_model)
    assert sender.error is None and sender.sent > 0, sender.error
    assert_stream_read(result, tmp_path / "out.mp4", 15, (80, 48))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_reads_http_stream(tmp_path, style_model):
    """An MPEG-TS file from a plain HTTP server (Python's own), read as a live stream."""
    make_clip(tmp_path / "live.ts", frames=60, size=(64, 48), audio=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    out = tmp_path / "out.mp4"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.ts"
        result = run_stream("-i", url, "-s", str(style_model), "-o", str(out), "--max-frames", "20", "--reconnect-for", "5",
                            "--no-dashboard", timeout=180)
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=30)
    assert_stream_read(result, out, 20, (64, 48))


@pytest.mark.parametrize("scheme", ["rtsp", "rtmp", "http"])
def test_stream_that_never_answers(tmp_path, style_model, scheme):
    """A server that accepts the connection and then says nothing: one clear line, soon."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"{scheme}://127.0.0.1:{silent.getsockname()[1]}/cam"
        result = run_stream("-i", url, "-s", str(style_model), "--timeout", "3", "-o", str(tmp_path / "o.mp4"),
                            "--no-dashboard", timeout=120)
    assert_one_line_error(result, url, "no answer")
    assert not (tmp_path / "o.mp4").exists()


# -- push ----------------------------------------------------------------------------------


class Receiver(threading.Thread):
    """FFmpeg listening for a push (through PyAV), decoding every frame it gets."""

    def __init__(self, url: str, options: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.options = url, options
        self.frames, self.size, self.error = 0, None, None

    def run(self) -> None:
        try:
            with av.open(self.url, options=self.options, timeout=(90, 15)) as container:
                video = container.streams.video[0]
                self.size = (video.codec_context.width, video.codec_context.height)
                for frame in container.decode(video):
                    self.frames += 1
                    self.size = (frame.width, frame.height)
        except av.error.FFmpegError as exc:  # the sender hanging up ends an rtmp receive with an I/O error
            self.error = exc


PUSHES = {
    "rtsp": ("rtsp://127.0.0.1:{port}/live", {"rtsp_flags": "listen", "listen_timeout": "60"}),
    "rtmp": ("rtmp://127.0.0.1:{port}/live/nstream", {"listen": "1", "timeout": "60"}),
}


@pytest.mark.parametrize(("scheme", "size", "received"), [("rtmp", (96, 64), (96, 64)), ("rtsp", (96, 64), (96, 64)),
                                                         ("rtsp", (97, 63), (96, 62))])
def test_push_to_a_real_receiver(tmp_path, style_model, scheme, size, received):
    """Odd sizes lose their last row/column on a push: stream players expect 4:2:0, which needs even sizes."""
    clip = make_clip(tmp_path / "in.mkv", frames=30, size=size, audio=True, pix_fmt="yuv444p")
    template, options = PUSHES[scheme]
    port = free_port()
    url = template.format(port=port)
    receiver = Receiver(url, options)
    receiver.start()
    try:
        wait_listening(port)
        started = time.monotonic()
        result = run_stream("-i", str(clip), "-s", str(style_model), "-o", url, "--no-dashboard", timeout=180)
        took = time.monotonic() - started
    finally:
        receiver.join(timeout=60)
    assert not receiver.is_alive(), "the receiver did not finish"
    assert took >= 30 / 25, "a pushed file must go out at its own frame rate (30 frames at 25 fps), not faster"
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert receiver.frames > 0, receiver.error
    assert receiver.size == received


@pytest.mark.parametrize("scheme", sorted(PUSHES))
def test_push_with_nobody_listening(tmp_path, style_model, scheme):
    url = PUSHES[scheme][0].format(port=free_port())
    clip = make_clip(tmp_path / "in.mp4", frames=5, audio=False)
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", url, "--no-dashboard", timeout=120)
    assert_one_line_error(result, "cannot push", url)


def test_rtsp_push_to_a_silent_server(tmp_path, style_model):
    """A receiver that accepts the connection and never answers: the push gives up (after the
    sink's 10 s) with one clear line. (RTMP cannot be bounded this way; see sinks.PUSH_TIMEOUT.)"""
    clip = make_clip(tmp_path / "in.mp4", frames=5, audio=False)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/live"
        result = run_stream("-i", str(clip), "-s", str(style_model), "-o", url, "--no-dashboard", timeout=120)
    assert_one_line_error(result, "cannot push", url, "no answer")


def test_push_receiver_goes_away(tmp_path, style_model):
    """The receiver hangs up mid-push: one clear line, and the file written beside it still plays."""
    clip = make_clip(tmp_path / "in.mp4", frames=250, size=(64, 48), audio=False)
    port = free_port()
    url = f"rtsp://127.0.0.1:{port}/live"
    got: list[int] = []

    def receive_a_little() -> None:
        options = {"rtsp_flags": "listen", "listen_timeout": "60"}
        with av.open(url, options=options, timeout=(90, 15)) as container:
            for _ in container.decode(video=0):
                got.append(1)
                if len(got) >= 10:
                    return  # closing the container hangs up on the sender

    receiver = threading.Thread(target=receive_a_little, daemon=True)
    receiver.start()
    out = tmp_path / "beside.mp4"
    proc = None
    try:
        wait_listening(port)
        proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "--live", "-s", str(style_model),
                                 "-o", str(out), "-o", url, "--no-dashboard"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        receiver.join(timeout=30)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert len(got) >= 10
    assert_one_line_error(result, url, "broke off")
    info = probe(out)
    assert 0 < info["frames"] < 250
