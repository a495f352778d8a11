"""What a new user hits (issue 15): unwritable outputs, truncated and interrupted inputs, no display,
the styles list, Vorbis audio, progress, --start/--duration, the single-image summary, offline help.

Real codecs and real files throughout: clips are written with PyAV, truncated files are real
encoded files cut short.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import av
import pytest

from conftest import ROOT, SHARED, assert_one_line_error, make_clip, moving_pattern, probe, run_stream

PHOTO = SHARED / "content" / "tubingen.jpg"
CARPHONE = SHARED / "video" / "carphone.mp4"


def _needs(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared test data lives in ../shared/data)")


def _stream(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run_stream(*args, "--no-dashboard", "--engine", "torch", **kwargs)


# -- 1. an output that cannot be written ------------------------------------------------------------

@pytest.mark.parametrize("target", ["/proc/out.mp4", "/sys/out.mp4"])
@pytest.mark.parametrize("audio", [True, False])
def test_unwritable_video_output_is_one_error_before_any_frame(tmp_path, style_model, target, audio):
    clip = make_clip(tmp_path / "in.mp4", frames=4, audio=audio)
    result = _stream("-i", str(clip), "-o", target, "-s", str(style_model))
    assert_one_line_error(result, target)
    assert result.returncode == 2
    assert "wrote" not in result.stdout and "done:" not in result.stdout, result.stdout
    assert "WARNING" not in result.stderr, result.stderr
    assert not Path(target).exists()


def test_unwritable_image_output(tmp_path, style_model):
    _needs(PHOTO)
    result = _stream("-i", str(PHOTO), "-o", "/proc/x.jpg", "-s", str(style_model))
    assert_one_line_error(result, "/proc/x.jpg")
    assert result.returncode == 2 and "wrote" not in result.stdout


@pytest.mark.parametrize("target", ["/proc/x.png", "/proc/out.mp4", "/sys/out/"])
def test_unwritable_offline_output_fails_before_the_work(tmp_path, target):
    _needs(PHOTO)
    content = PHOTO if target.endswith(".png") else make_clip(tmp_path / "in.mp4", frames=2, size=(32, 24))
    work = tmp_path / "work"
    result = subprocess.run([sys.executable, str(ROOT / "offline.py"), "-c", str(content), "-s", str(PHOTO),
                             "-o", target, "--loss-net", "random", "-i", "1", "-z", "32", "--no-progress",
                             "--work-dir", str(work)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert_one_line_error(result, target.rstrip("/"))
    assert result.returncode == 2 and "wrote" not in result.stdout
    assert not list(work.rglob("*.png")), "frames were rendered before the output was found unwritable"


def test_a_write_failing_mid_run_is_one_error_and_keeps_what_was_written(tmp_path, style_model):
    """A file-size limit (what a full disk does to a writer: EFBIG instead of ENOSPC) hit after the
    first fragments: one error line, exit 2, no 'wrote', and the fragments already out still play."""
    clip = make_clip(tmp_path / "in.mkv", frames=150, size=(160, 120), audio=False)
    out = tmp_path / "out.mp4"
    limit = 8_000

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", str(out),
                             "-s", str(style_model), "--no-dashboard", "--engine", "torch", "--temporal-strength", "0"],
                            capture_output=True, text=True, timeout=300, preexec_fn=small_files, cwd=ROOT)
    assert_one_line_error(result, str(out), "frames")
    assert result.returncode == 2
    assert "wrote" not in result.stdout
    assert 0 < _decodable_frames(out) < 150


def _decodable_frames(path: Path) -> int:
    """Frames a player shows: decoded until the first damaged packet, if any."""
    count = 0
    with av.open(str(path)) as container:
        try:
            for packet in container.demux(video=0):
                count += len(packet.decode())
        except av.error.FFmpegError:
            pass
    return count


# -- 3. a window with no display ----------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for X11/Wayland")
def test_window_without_a_display_is_one_error(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", "window",
                             "-s", str(style_model), "--no-dashboard"], capture_output=True, text=True, timeout=300,
                            env=env, cwd=ROOT)
    assert_one_line_error(result, "display")
    assert result.returncode == 2


# -- 5. Vorbis audio into MP4 ---------------------------------------------------------------------------

@pytest.mark.parametrize("container", [".mkv", ".webm"])
def test_vorbis_audio_becomes_aac_in_mp4(tmp_path, style_model, container):
    codec = "libvpx-vp9" if container == ".webm" else "libx264"
    clip = _vorbis_clip(tmp_path / f"in{container}", codec)
    assert probe(clip)["audio_codec"] == "vorbis"
    for suffix, expected in ((".mp4", "aac"), (".mov", "aac"), (".mkv", "vorbis")):
        out = tmp_path / f"out{suffix}"
        result = _stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--temporal-strength", "0")
        assert result.returncode == 0, result.stderr
        info = probe(out)
        assert info["audio_codec"] == expected, (suffix, info["audio_codec"])
        assert info["frames"] == 10
        assert abs(info["audio_seconds"] - 1.0) < 0.15, info["audio_seconds"]


def _vorbis_clip(path: Path, video_codec: str = "libx264", frames: int = 10, fps: int = 10) -> Path:
    """A clip with Vorbis audio (FFmpeg's own, experimental, encoder) and a 1 s sine."""
    import math
    from fractions import Fraction

    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("vorbis", rate=44100, layout="stereo")
        sound.codec_context.options = {"strict": "experimental"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(i, 64, 48), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = 44100 * frames // fps
        wave = (0.3 * np.sin(2 * math.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        wave = np.stack([wave, wave])
        for start in range(0, samples, 1024):
            aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start:start + 1024]), format="fltp",
                                                layout="stereo")
            aframe.sample_rate, aframe.pts = 44100, start
            out.mux(sound.encode(aframe))
        out.mux(sound.encode(None))
    return path
