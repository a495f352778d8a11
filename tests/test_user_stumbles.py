"""What a new user hits (issue 15): unwritable outputs, truncated and interrupted inputs, no display,
the styles list, Vorbis audio, progress, --start/--duration, the single-image summary, offline help.

Real codecs and real files throughout: clips are written with PyAV, truncated files are real
encoded files cut short.
"""

from __future__ import annotations

import json
import os
import re
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


@pytest.mark.slow
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

@pytest.mark.slow
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


# -- 2. truncation and interruption ---------------------------------------------------------------------

def _fragmented_mp4(path: Path, frames: int = 30, fps: int = 10) -> Path:
    """A fragmented MP4 as stream.py writes them (a fragment a second), a keyframe every 5 frames."""
    from fractions import Fraction

    from nstream.media.sinks import FRAGMENTED

    with av.open(str(path), "w", format="mp4", options=dict(FRAGMENTED)) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"g": "5"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_pattern(i, 64, 48), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def _cut(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def _truncated(tmp_path: Path, kind: str) -> tuple[Path, int]:
    """A real encoded file cut in half, and the frames it held whole."""
    if kind == "fragmented.mp4":
        return _cut(_fragmented_mp4(tmp_path / kind)), 30
    if kind == "clip.mkv":  # 30 frames, the byte half of them
        return _cut(make_clip(tmp_path / kind, frames=30, fps=10)), 30
    # the header states 30 s; half the bytes hold about 20 of them
    return _cut(make_clip(tmp_path / kind, frames=300, fps=10, codec="libvpx-vp9", audio_codec="libopus")), 300


@pytest.mark.parametrize("kind", ["fragmented.mp4", "clip.mkv", "clip.webm"])
def test_truncated_input_is_stylized_to_the_break_with_one_warning(tmp_path, style_model, kind):
    cut, whole = _truncated(tmp_path, kind)
    out, stats = tmp_path / "out.mkv", tmp_path / "stats.json"
    result = _stream("-i", str(cut), "-o", str(out), "-s", str(style_model), "--temporal-strength", "0",
                     "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and cut.name in warnings[0] and "truncated" in warnings[0], result.stderr
    assert "input truncated" in result.stdout, result.stdout
    figures = json.loads(stats.read_text())
    assert figures["complete"] is False and figures["truncated"] is True and figures["interrupted"] is False
    written = probe(out)["frames"]
    assert 0 < written < whole and written == figures["frames_out"]


def test_a_whole_input_is_complete(tmp_path, style_model):
    clip = make_clip(tmp_path / "clip.mkv", frames=30, fps=10)
    stats = tmp_path / "stats.json"
    result = _stream("-i", str(clip), "-o", str(tmp_path / "out.mp4"), "-s", str(style_model),
                     "--temporal-strength", "0", "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr and "done: 30 frames out of 30" in result.stdout
    figures = json.loads(stats.read_text())
    assert figures["complete"] is True and figures["interrupted"] is False and figures["truncated"] is False


@pytest.mark.slow
def test_ctrl_c_says_interrupted(tmp_path, style_model):
    import signal
    import time

    from conftest import reaped

    clip = make_clip(tmp_path / "long.mp4", frames=400, size=(320, 240))
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", str(out),
                             "-s", str(style_model), "--no-dashboard", "--stats-json", str(stats)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        deadline = time.monotonic() + 120  # signal once frames are flowing (the first fragment is on disk)
        while time.monotonic() < deadline and proc.poll() is None and (not out.exists() or out.stat().st_size < 4_000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "interrupted:" in stdout and "done:" not in stdout, stdout
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "interrupted" in warnings[0], stderr
    figures = json.loads(stats.read_text())
    assert figures["interrupted"] is True and figures["complete"] is False
    assert 0 < probe(out)["frames"] == figures["frames_out"] < 400


# -- 4. the styles list -----------------------------------------------------------------------------------

def _bundled_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "nstream" / "styles").glob("*.pth"))


def test_styles_in_a_pipe_are_plain_rows_with_full_names():
    result = subprocess.run([sys.executable, "-m", "nstream", "styles"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert not set(result.stdout) & set("│┃━─┏┗…"), result.stdout
    names = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert set(_bundled_names()) <= set(names), names


def test_styles_on_an_80_column_terminal_keep_full_names():
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "nstream", "styles"], stdout=follower, stderr=subprocess.PIPE,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "80", "TERM": "xterm"}) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=120)
    os.close(leader)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode())  # colours and cursor codes
    assert proc.returncode == 0
    assert "…" not in text, text
    assert "┃" in text  # a table on a terminal
    for name in _bundled_names():
        assert f" {name} " in text, (name, text)
    assert max(len(line) for line in text.splitlines()) <= 80


# -- 6. progress ------------------------------------------------------------------------------------------

def test_plain_progress_prints_on_change_only_with_count_and_time_left(capsys):
    from nstream import dashboard
    from nstream.stats import PipelineStats

    stats = PipelineStats()
    stats.info.update(frame_count=10, live=False)
    polls = iter(range(60))

    def running() -> bool:
        step = next(polls, None)
        if step is None:
            return False
        if step in (10, 30):  # two changes: three frames out, then three more
            for _ in range(3):
                stats.stage("decode", 0.001)
                stats.delivered(0.0)
        return True

    dashboard.watch(stats.snapshot, running, mode="plain", line_every_s=0.0, tick_s=0.0)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 3, lines  # the start, then once per change: not one line per poll
    assert lines[1].startswith("frames 3/10 (30 %, ") and " left)" in lines[1], lines
    assert lines[2].startswith("frames 6/10 (60 %, "), lines


def test_dashboard_shows_count_and_time_left():
    import io

    from rich.console import Console

    from nstream import dashboard
    from nstream.stats import PipelineStats

    stats = PipelineStats()
    stats.info.update(frame_count=10, live=False)
    for _ in range(4):
        stats.stage("decode", 0.001)
        stats.delivered(0.0)
    buffer = io.StringIO()
    Console(file=buffer, width=120, force_terminal=True, color_system=None).print(dashboard.render(stats.snapshot()))
    assert "4/10" in buffer.getvalue() and " left" in buffer.getvalue(), buffer.getvalue()


# -- 7. --start / --duration -------------------------------------------------------------------------------

def _frames_between(path: Path, begin: float, end: float) -> int:
    return sum(begin - 1e-6 <= t < end - 1e-6 for t in probe(path)["seconds"])


def test_start_and_duration_cut_frames_and_audio(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=75, fps=25)  # 3 s, a 440 Hz tone throughout
    out = tmp_path / "out.mp4"
    result = _stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--start", "1", "--duration", "1.2",
                     "--temporal-strength", "0")
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr, result.stderr
    info = probe(out)
    assert info["frames"] == _frames_between(clip, 1.0, 2.2) == 30
    assert info["seconds"][0] == 0.0
    assert abs(info["audio_seconds"] - 1.2) < 0.06, info["audio_seconds"]


@pytest.mark.slow
def test_start_alone_runs_to_the_end_of_a_shared_clip(tmp_path, style_model):
    _needs(CARPHONE)
    out, stats = tmp_path / "out.mkv", tmp_path / "stats.json"
    result = _stream("-i", str(CARPHONE), "-o", str(out), "-s", str(style_model), "--start", "2.5",
                     "--temporal-strength", "0", "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == _frames_between(CARPHONE, 2.5, 1e9) > 0
    assert info["seconds"][0] == 0.0
    assert json.loads(stats.read_text())["complete"] is True


@pytest.mark.parametrize("args, fragment", [(["--start", "99"], "past the end"), (["--duration", "0"], "--duration"),
                                           (["--start", "-1"], "--start")])
def test_start_and_duration_out_of_range(tmp_path, style_model, args, fragment):
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    result = _stream("-i", str(clip), "-o", str(tmp_path / "o.mp4"), "-s", str(style_model), *args)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


# -- 8. the single-image summary, offline help ----------------------------------------------------------------

@pytest.mark.slow
def test_single_image_summary_has_no_temporal_settings(tmp_path, style_model):
    _needs(PHOTO)
    result = _stream("-i", str(PHOTO), "-o", str(tmp_path / "x.jpg"), "-s", str(style_model))
    assert result.returncode == 0, result.stderr
    assert "temporal" not in result.stdout and "flow" not in result.stdout, result.stdout
    assert "done: 1 image" in result.stdout


def test_offline_help_says_each_default_once():
    result = subprocess.run([sys.executable, str(ROOT / "offline.py"), "--help"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    entries = re.split(r"\n(?=  -)", result.stdout)
    for entry in entries:
        flat = " ".join(entry.split())
        assert flat.lower().count("default") <= 1, flat
        assert "(default: None)" not in flat and "['" not in flat, flat
