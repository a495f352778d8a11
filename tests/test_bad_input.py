"""Bad input: one clear error line, a non-zero exit, no traceback, nothing produced lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, assert_one_line_error, make_clip, probe, run_stream


def test_missing_file(tmp_path, style_model):
    result = run_stream("-i", str(tmp_path / "nope.mp4"), "-s", str(style_model), "--no-dashboard")
    assert_one_line_error(result, "not found", "nope.mp4")


def test_text_file_named_mp4(tmp_path, style_model):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 20)
    result = run_stream("-i", str(fake), "-s", str(style_model), "-o", str(tmp_path / "o.mp4"), "--no-dashboard")
    assert_one_line_error(result, "fake.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_corrupt_image_in_a_folder_keeps_the_images_before_it(tmp_path, style_model):
    from PIL import Image

    from conftest import moving_pattern

    folder = tmp_path / "shots"
    folder.mkdir()
    Image.fromarray(moving_pattern(0, 40, 30)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"not a png at all")
    result = run_stream("-i", str(folder), "-o", f"{tmp_path / 'out'}/", "-s", str(style_model), "--no-dashboard")
    assert_one_line_error(result, "cannot read image", "b.png")
    assert Image.open(tmp_path / "out" / "a.png").size == (40, 30)


@pytest.mark.slow
def test_truncated_mp4_keeps_what_decodes(tmp_path, style_model):
    """mp4 with its index at the end, cut in half: no index, so nothing is decodable -> error;
    an mkv cut in half still yields its first frames, which are written and playable."""
    clip = make_clip(tmp_path / "whole.mp4", frames=20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    result = run_stream("-i", str(cut), "-s", str(style_model), "-o", str(tmp_path / "o.mp4"), "--no-dashboard")
    assert_one_line_error(result, "cut.mp4")

    mkv = make_clip(tmp_path / "whole.mkv", frames=40, size=(96, 64))
    half = tmp_path / "half.mkv"
    half.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    out = tmp_path / "half_out.mp4"
    result = run_stream("-i", str(half), "-s", str(style_model), "-o", str(out), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert 0 < probe(out)["frames"] < 40


def test_zero_frame_file(tmp_path, style_model):
    empty = tmp_path / "empty.mp4"
    import av

    with av.open(str(empty), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = 32, 32
    result = run_stream("-i", str(empty), "-s", str(style_model), "-o", str(tmp_path / "o.mp4"), "--no-dashboard")
    assert_one_line_error(result, "empty.mp4")


def test_audio_only_file(tmp_path, style_model):
    import av

    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        out.add_stream("aac", rate=48000, layout="mono")
    result = run_stream("-i", str(path), "-s", str(style_model), "--no-dashboard")
    assert_one_line_error(result, "sound.m4a")


def test_unknown_style(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    result = run_stream("-i", str(clip), "-s", "no_such_style", "--no-dashboard")
    assert_one_line_error(result, "unknown style", "no_such_style")


def test_malicious_checkpoint_does_not_run(tmp_path):
    """A pickle that would run code on load is refused by weights_only=True."""
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, bad)
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    result = run_stream("-i", str(clip), "-s", str(bad), "--no-dashboard")
    assert_one_line_error(result, "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_unwritable_output(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(blocker / "out.mp4"), "--no-dashboard")
    assert_one_line_error(result, "out")


@pytest.mark.slow
def test_unsupported_output_type(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(tmp_path / "o.xyz"), "--no-dashboard")
    assert_one_line_error(result, ".xyz")


def test_missing_camera(style_model):
    result = run_stream("-i", "7", "-s", str(style_model), "--no-dashboard")
    assert_one_line_error(result, "camera", "7")


@pytest.mark.slow
def test_rtsp_url_nobody_serves(style_model, tmp_path):
    import socket

    with socket.socket() as s:  # a free port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = run_stream("-i", f"rtsp://127.0.0.1:{port}/cam", "-s", str(style_model), "--timeout", "3",
                        "-o", str(tmp_path / "o.mp4"), "--no-dashboard")
    assert_one_line_error(result, "rtsp://127.0.0.1")
    assert time.monotonic() - started < 60


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_drains_and_finalizes(tmp_path, style_model, sig):
    """Ctrl-C or SIGTERM mid-run: exit 0 with a summary, and the file plays to its last frame."""
    clip = make_clip(tmp_path / "long.mp4", frames=400, size=(320, 240))  # long enough to be mid-run when signalled
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", str(out),
                             "-s", str(style_model)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # signal once frames are flowing (the first fragment is on disk)
    while time.monotonic() < deadline and proc.poll() is None and (not out.exists() or out.stat().st_size < 4_000):
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "interrupted:" in stdout and "400 frames out of 400" not in stdout, stdout
    info = probe(out)
    assert 0 < info["frames"] < 400
    assert info["audio_codec"] == "aac"


def test_killed_run_leaves_a_playable_file(tmp_path, style_model):
    """Even SIGKILL (no chance to finalize) leaves the fragments written so far playable."""
    clip = make_clip(tmp_path / "long.mp4", frames=600, size=(64, 48), audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", str(out),
                             "-s", str(style_model), "--no-dashboard", "--preset", "ultrafast"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 8_000):
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert probe(out)["frames"] > 0


def test_virtualcam_without_its_extra(tmp_path, style_model):
    pytest.importorskip("torch")
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyvirtualcam is installed: the missing-extra message cannot be shown")
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", "virtualcam", "--no-dashboard")
    assert_one_line_error(result, "pyvirtualcam")
