"""stream.py end to end on files: frame-exact output, timing, sizes, audio kept."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import numpy as np
import pytest

from conftest import ROOT, SHARED, make_clip, probe, run_stream


def test_mp4_with_audio_is_frame_exact(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=15, size=(64, 48))
    out = tmp_path / "out.mp4"
    stats = tmp_path / "stats.json"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard",
                        "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    src, dst = probe(clip), probe(out)
    assert dst["frames"] == src["frames"] == 15
    assert (dst["width"], dst["height"]) == (64, 48)
    assert dst["seconds"] == pytest.approx(src["seconds"], abs=1e-3)
    assert dst["audio_codec"] == "aac"
    assert dst["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=0.05)
    figures = json.loads(stats.read_text())
    assert figures["frames_in"] == figures["frames_out"] == 15
    assert figures["dropped"] == 0
    for key in ("p50", "p95", "max"):
        assert figures["latency_ms"][key] > 0
    assert set(figures["stages"]) == {"decode", "stylize", "encode"}
    # The network really ran: the output is not the input.
    assert np.abs(dst["first"].astype(int) - src["first"].astype(int)).mean() > 10


@pytest.mark.parametrize("suffix", [".mkv", ".mov", ".webm", ".avi"])
def test_containers_round_trip(tmp_path, style_model, suffix):
    clip = make_clip(tmp_path / f"in{suffix}", frames=8, size=(48, 32), fps=24, audio=suffix != ".webm",
                     codec="libvpx-vp9" if suffix == ".webm" else "libx264")
    out = tmp_path / f"out{suffix}"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == 8
    assert (info["width"], info["height"]) == (48, 32)
    if suffix != ".webm":
        assert info["audio_codec"] == "aac"


def test_audio_transcoded_where_container_needs_it(tmp_path, style_model):
    """AAC cannot go into WebM: it is re-encoded to Opus, not dropped."""
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    out = tmp_path / "out.webm"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == 10
    assert info["audio_codec"] == "opus"
    assert info["audio_seconds"] == pytest.approx(0.4, abs=0.1)


def test_gif_in_and_out(tmp_path, style_model):
    gif = make_clip(tmp_path / "in.gif", frames=6, size=(40, 30), fps=10, audio=False, codec="gif", pix_fmt="rgb8")
    out = tmp_path / "out.gif"
    result = run_stream("-i", str(gif), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert info["frames"] == 6 and (info["width"], info["height"]) == (40, 30)


def test_odd_size_keeps_exact_size(tmp_path, style_model):
    clip = make_clip(tmp_path / "odd.mkv", frames=5, size=(175, 143), codec="libx264", pix_fmt="yuv444p")
    out = tmp_path / "odd_out.mp4"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info["width"], info["height"], info["frames"]) == (175, 143, 5)


@pytest.mark.parametrize("pix_fmt", ["gray", "yuv420p10le"])
def test_grey_and_10_bit_inputs(tmp_path, style_model, pix_fmt):
    codec = "ffv1" if pix_fmt == "gray" else "libx264"
    clip = make_clip(tmp_path / f"{pix_fmt}.mkv", frames=5, codec=codec, pix_fmt=pix_fmt, audio=False)
    out = tmp_path / f"{pix_fmt}_out.mp4"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    assert probe(out)["frames"] == 5


def test_variable_frame_rate_timestamps_survive(tmp_path, style_model):
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 200, 240, 400, 440, 480]  # gaps: a VFR phone clip
    clip = make_clip(tmp_path / "vfr.mkv", frames=len(pts), time_base=tb, pts=pts, audio=False)
    out = tmp_path / "vfr_out.mkv"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    assert probe(out)["seconds"] == pytest.approx([p / 1000 for p in pts], abs=2e-3)


def test_rotated_phone_video_is_turned_upright(tmp_path, style_model):
    clip = make_clip(tmp_path / "rotated.mp4", frames=4, size=(64, 48), rotation=90, audio=False)
    out = tmp_path / "rotated_out.mp4"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info["width"], info["height"]) == (48, 64)


def test_single_image_gives_an_image(tmp_path, style_model):
    from PIL import Image

    from conftest import moving_pattern

    Image.fromarray(moving_pattern(0, 50, 38)).save(tmp_path / "photo.png")
    out = tmp_path / "styled.png"
    result = run_stream("-i", str(tmp_path / "photo.png"), "-o", str(out), "-s", str(style_model), "--no-dashboard",
                        "--engine", "torch")
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (50, 38)
    assert "Warning" not in result.stderr, result.stderr  # a read-only decoded image made torch warn


def test_image_folder_to_video_and_to_images(tmp_path, style_model):
    from PIL import Image

    from conftest import moving_pattern

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(moving_pattern(i, 40, 32)).save(folder / f"f{i:02d}.jpg")
    video = tmp_path / "seq.mp4"
    result = run_stream("-i", str(folder), "-o", str(video), "-o", str(tmp_path / "styled") + "/",
                        "-s", str(style_model), "--fps", "10", "--no-dashboard")
    assert result.returncode == 0, result.stderr
    info = probe(video)
    assert info["frames"] == 5 and info["seconds"][-1] == pytest.approx(0.4)
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == [f"f{i:02d}.jpg" for i in range(5)]


def test_scale_and_size_options_keep_output_size(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=4, size=(96, 64), audio=False)
    for option in (["--scale", "0.5"], ["--size", "50x30"]):
        out = tmp_path / f"out{option[0]}.mp4"
        result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "--no-dashboard", *option)
        assert result.returncode == 0, result.stderr
        info = probe(out)
        assert (info["width"], info["height"], info["frames"]) == (96, 64, 4)


def test_several_sinks_at_once(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mkv"
    result = run_stream("-i", str(clip), "-o", str(a), "-o", str(b), "-o", "null", "-s", str(style_model),
                        "--no-dashboard")
    assert result.returncode == 0, result.stderr
    pa, pb = probe(a), probe(b)
    assert pa["frames"] == pb["frames"] == 6
    assert pa["audio_codec"] == pb["audio_codec"] == "aac"
    assert np.array_equal(pa["first"].shape, pb["first"].shape)


@pytest.mark.skipif(not (SHARED / "video" / "carphone.mp4").exists(), reason="needs ../shared/data")
def test_shared_clip_frame_count(tmp_path, style_model):
    out = tmp_path / "carphone.mp4"
    result = run_stream("-i", str(SHARED / "video" / "carphone.mp4"), "-o", str(out), "-s", str(style_model),
                        "--no-dashboard", "--max-frames", "30")
    assert result.returncode == 0, result.stderr
    assert probe(out)["frames"] == 30


def test_plain_progress_line_when_not_a_terminal(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=5, audio=False)
    result = run_stream("-i", str(clip), "-o", str(tmp_path / "o.mp4"), "-s", str(style_model))
    assert result.returncode == 0, result.stderr
    assert "done: 5 frames" in result.stdout
    assert "\x1b[" not in result.stdout  # no terminal control codes in a log


def test_demo_default_runs_with_no_arguments(tmp_path):
    """``python stream.py`` alone: bundled clip, bundled style, result/<clip>_<style>.mp4 with audio."""
    from nstream.models.registry import DEFAULT_STYLE, list_styles

    if DEFAULT_STYLE not in {entry.name for entry in list_styles()}:
        pytest.fail("the default style is not bundled")
    result = run_stream("--max-frames", "3", "--scale", "0.25", "--no-dashboard", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "result" / f"bigbuckbunny_{DEFAULT_STYLE}_lite.mp4"  # a CPU runs the lite network
    info = probe(out)
    assert info["frames"] == 3 and (info["width"], info["height"]) == (1280, 720)
    assert info["audio_codec"] == "aac"
    assert (ROOT / "nstream" / "assets" / "bigbuckbunny.mp4").exists()


@pytest.mark.slow
def test_two_workers_write_exactly_what_one_writes(tmp_path, style_model):
    """Two frames stylized at once, the blend after them in order: the same pixels as one at a time."""
    from PIL import Image

    clip = make_clip(tmp_path / "in.mp4", frames=12, size=(64, 48))
    frames = {}
    for label, extra in (("one", ["--workers", "1"]), ("two", ["--workers", "2"]), ("off", ["--temporal-strength", "0"])):
        stats = tmp_path / f"{label}.json"
        result = run_stream("-i", str(clip), "-o", f"{tmp_path / label}/", "-s", str(style_model), "--no-dashboard",
                            "--threads", "1", "--stats-json", str(stats), *extra)
        assert result.returncode == 0, result.stderr
        frames[label] = [np.asarray(Image.open(path)) for path in sorted((tmp_path / label).glob("*.png"))]
        if label == "two":
            assert json.loads(stats.read_text())["workers"] == 2
    assert len(frames["one"]) == len(frames["two"]) == 12
    assert all(np.array_equal(a, b) for a, b in zip(frames["one"], frames["two"], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(frames["one"], frames["off"], strict=True))  # it did blend


@pytest.mark.parametrize(("workers", "threads", "live", "cpu", "expected"), [
    (None, None, False, True, (2, 4)),   # a file on a CPU: two frames at once, half the cores each
    (None, 3, False, True, (1, 3)),      # --threads alone keeps one frame on that many threads
    (None, None, True, True, (1, None)),  # live: one frame, all cores
    (None, None, False, False, (1, None)),  # GPU
    (4, None, False, True, (4, 2)),
    (3, 1, False, True, (3, 1)),
])
def test_plan_workers(workers, threads, live, cpu, expected):
    from nstream.session import plan_workers

    assert plan_workers(workers, threads, live, cpu, cores=8) == expected


def test_zero_workers_is_one_clear_error(tmp_path, style_model):
    from conftest import assert_one_line_error

    clip = make_clip(tmp_path / "in.mp4", frames=3, size=(32, 24))
    result = run_stream("-i", str(clip), "-o", "null", "-s", str(style_model), "--no-dashboard", "--workers", "0")
    assert_one_line_error(result, "--workers 0")


@pytest.mark.slow
def test_a_bare_style_name_means_its_lite_network_on_a_cpu(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    picked = {}
    user_styles = tmp_path / "styles"  # a user style with only a lite network
    user_styles.mkdir()
    shutil.copy(ROOT / "nstream" / "styles" / "the_scream_lite.pth", user_styles / "mine_lite.pth")
    for spec in ("wave", "wave_johnson", "wave_lite", "mine"):
        stats = tmp_path / f"{spec}.json"
        result = run_stream("-i", str(clip), "-o", "null", "-s", spec, "--no-dashboard", "--stats-json", str(stats),
                            env={"NSTREAM_STYLES": str(user_styles)})
        assert result.returncode == 0, result.stderr
        figures = json.loads(stats.read_text())
        picked[spec] = (figures["style"], figures["network"])
    assert picked["wave"] == ("wave_lite", "lite (for the CPU; -s wave_johnson for johnson)")
    assert picked["wave_johnson"] == ("wave", "johnson")
    assert picked["wave_lite"] == ("wave_lite", "lite")
    assert picked["mine"] == ("mine_lite", "lite (the only network of mine)")
