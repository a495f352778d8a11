"""Shared test helpers: clips made with PyAV, a seeded style model, the CLI as a subprocess."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from nstream.frames import Frame
from nstream.media.sinks import Sink

TORCH_THREADS = torch.get_num_threads()  # a fresh process's, before any engine caps it

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def moving_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A textured frame that moves by one pixel per frame: real motion for codecs and flow."""
    y, x = np.mgrid[0:height, 0:width]
    r = (np.sin((x + index) / 5.0) * 127 + 128).astype(np.uint8)
    g = (np.cos((y + 2 * index) / 7.0) * 127 + 128).astype(np.uint8)
    b = (((x // 8 + y // 8 + index // 4) % 2) * 200 + 20).astype(np.uint8)
    return np.stack([r, g, b], axis=-1)


def make_clip(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: int = 25, audio: bool = True,
              codec: str = "libx264", pix_fmt: str = "yuv420p", audio_codec: str = "aac",
              time_base: Fraction | None = None, pts: list[int] | None = None, rotation: int | None = None) -> Path:
    """Write a clip with PyAV: a moving pattern and, optionally, a 440 Hz sine track."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            video.time_base = time_base
            video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream(audio_codec, rate=48000, layout="mono")
        tb = time_base or Fraction(1, fps)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(i, width, height), format="rgb24")
            frame.pts = pts[i] if pts else i * round(1 / (fps * tb))
            frame.time_base = tb
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = int(48000 * frames / fps)
            t = np.arange(samples) / 48000.0
            wave = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None, :]
            chunk = 1024
            for start in range(0, samples, chunk):
                aframe = av.AudioFrame.from_ndarray(wave[:, start:start + chunk], format="fltp", layout="mono")
                aframe.sample_rate = 48000
                aframe.pts = start
                out.mux(sound.encode(aframe))
            out.mux(sound.encode(None))
    return path


def free_port() -> int:
    """A loopback port nothing listens on now, so a test's server never meets another run's on a default port."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def probe(path: Path) -> dict:
    """Decode a file completely: frame count, size, pts, audio presence and duration."""
    with av.open(str(path)) as container:
        info: dict = {"audio_codec": None, "audio_seconds": 0.0}
        if container.streams.audio:
            stream = container.streams.audio[0]
            info["audio_codec"] = stream.codec_context.name
            samples = sum(f.samples for f in container.decode(stream))
            info["audio_seconds"] = samples / stream.codec_context.sample_rate
            container.seek(0)
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        info.update(frames=len(frames), width=stream.codec_context.width, height=stream.codec_context.height,
                    pts=[f.pts for f in frames], time_base=stream.time_base,
                    seconds=[float(f.pts * f.time_base) for f in frames], first=frames[0].to_ndarray(format="rgb24")
                    if frames else None)
        return info


@pytest.fixture(scope="session")
def style_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Johnson network with seeded random weights, saved in the project's format."""
    from nstream.models.checkpoints import save_style
    from nstream.models.johnson import TransformerNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("styles") / "seeded.pth"
    return save_style(path, TransformerNet(), "johnson", {"name": "seeded", "style_image": "none"})


@pytest.fixture(scope="session")
def red_style_model(style_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``style_model`` with its last layer's red bias raised so far that every output pixel is full red:
    a second style whose frames are told apart from the first's at a glance."""
    from nstream.models.checkpoints import load_style_model, save_style

    model, _ = load_style_model(style_model)
    with torch.no_grad():
        model.deconv3.conv2d.bias[0] += 1000.0
    path = tmp_path_factory.mktemp("styles") / "red.pth"
    return save_style(path, model, "johnson", {"name": "red", "style_image": "none"})


@contextmanager
def reaped(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """A started process that is killed (and waited for) if it is still running when the block ends,
    so a failed assertion never leaves a stream.py behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def run_stream(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
               ) -> subprocess.CompletedProcess:
    """``python stream.py ARGS`` for real, as a user runs it."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "stream.py"), *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Non-zero exit, no traceback, one ``error:`` line naming what went wrong."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), errors[0]


class ListSink(Sink):
    """A sink that keeps every frame it is given, and says whether it was closed."""

    name = "list"

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.closed = False

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True
