"""Dark and flat frames stay dark and flat (nstream/darkguard.py), for every network family, through
the feed-forward and the temporal path; ordinary frames are untouched."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from conftest import ROOT, SHARED, moving_pattern, run_stream
from nstream.engines import create_engine
from nstream.models.style_spec import load_style
from nstream.stylizer import Stylizer

DEMO = ROOT / "nstream" / "assets" / "bigbuckbunny.mp4"


def frames_of(path: Path, count: int, step: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(clip.decode(video=0)) if i % step == 0]
    return frames[:count]


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["starry_night", "starry_night_lite", "wave.jpg", "tf26-07"])
def test_every_family_keeps_a_dark_frame_dark(spec: str) -> None:
    style = load_style(spec)
    engine = create_engine("torch", style.model, "cpu")
    photo = frames_of(DEMO, 1)[0][::4, ::4].copy()
    dark = (photo.astype(np.float32) * 0.04).round().astype(np.uint8)  # mean ~4.5 of 255
    flat = np.full_like(photo, 3)
    unguarded = Stylizer(engine, style=style.vector, dark_guard=False)
    guarded = Stylizer(engine, style=style.vector)
    assert luma(unguarded(dark)).mean() > 40 or luma(unguarded(flat)).mean() > 25  # what the networks do alone
    out = guarded(dark)
    assert luma(out).mean() < 20 and luma(out).std() < 12
    assert luma(guarded(flat)).mean() < 15  # the networks alone: 32-157


@pytest.mark.slow
def test_ordinary_frames_are_untouched() -> None:
    clips = [DEMO] + [SHARED / "video" / name for name in ("bikes.mp4", "carphone.mp4") if (SHARED / "video").is_dir()]
    style = load_style("starry_night_lite")
    engine = create_engine("torch", style.model, "cpu")
    for clip in clips:
        for frame in frames_of(clip, 6, step=20):
            small = frame[::2, ::2].copy()
            guarded = Stylizer(engine)(small).astype(np.float64)
            plain = Stylizer(engine, dark_guard=False)(small).astype(np.float64)
            error = np.mean((guarded - plain) ** 2)
            assert error == 0 or 10 * np.log10(255 ** 2 / error) > 45, clip


def write_fade(path: Path, frames: int = 25, size: tuple[int, int] = (96, 64)) -> Path:
    """A fade from black over the first 20 frames, with real H.264 blocks in the dark ones."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            level = min(1.0, i / 20)
            pixels = (moving_pattern(i, *size).astype(np.float32) * level).round().astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("temporal", ["0", "0.7"])
def test_a_fade_from_black_stays_dark_and_smooth(tmp_path: Path, temporal: str) -> None:
    clip = write_fade(tmp_path / "fade.mp4")
    means = {}
    for label, extra in (("guarded", []), ("plain", ["--no-dark-guard"])):
        out = tmp_path / f"{label}.mp4"
        result = run_stream("-i", str(clip), "-o", str(out), "-s", "starry_night_lite", "--no-dashboard",
                            "--temporal-strength", temporal, *extra)
        assert result.returncode == 0, result.stderr
        means[label] = [luma(f).mean() for f in frames_of(out, 25)]
    plain, guarded = means["plain"], means["guarded"]
    assert plain[0] > 30  # the network alone turns black into a bright picture of nothing
    assert guarded[0] < 6 and guarded[1] < 15  # black stays black, 5 % stays dark
    steps = np.diff(guarded[:21])
    # brightens with the fade, no step above a third of the picture's own brightness (no flash: the plain
    # network jumps from black to nearly all of it in the first frame)
    assert steps.min() > -3 and steps.max() < plain[-1] / 3
    assert abs(guarded[-1] - plain[-1]) < 1  # once the picture is up, nothing changes


def test_dark_guard_leaves_an_ordinary_frame_alone() -> None:
    from nstream.darkguard import follow_dark_input

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (32, 32, 3)), rng.uniform(0, 255, (32, 32, 3))
    assert follow_dark_input(y, x) is y
