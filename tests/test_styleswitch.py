"""Several styles in one run: switching by key and by SIGUSR1, while a real stream runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, make_clip, reaped, run_stream
from nstream.frames import Frame
from nstream.styleswitch import StyleSwitch


def test_keys_pick_next_previous_and_numbered_styles():
    info: dict = {}
    switch = StyleSwitch(["a", "b", "c"], [lambda im: im + 0, lambda im: im + 1, lambda im: im + 2], info)
    image = np.zeros((2, 2, 3), np.uint8)
    assert info == {"style": "a", "style_switches": 0, "styles": ["a", "b", "c"]}
    switch.on_key(ord("n"))
    assert switch.name == "b" and switch(image).max() == 1
    switch.on_key(ord(" "))
    switch.on_key(ord(" "))  # wraps around
    assert switch.name == "a"
    switch.on_key(ord("p"))
    assert switch.name == "c" and info["style"] == "c"
    switch.on_key(ord("2"))
    assert switch.name == "b"
    switch.on_key(ord("9"))  # no ninth style: nothing happens
    switch.on_key(ord("x"))
    switch.on_key(ord("2"))  # already active: not a switch
    assert switch.name == "b" and info["style_switches"] == 5


def red_frames(path) -> list[bool]:
    """For each frame of a video: is it the red style's (every pixel full red)?"""
    with av.open(str(path)) as container:
        return [bool(frame.to_ndarray(format="rgb24")[..., 0].mean() > 235) for frame in container.decode(video=0)]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1 is POSIX only")
def test_sigusr1_switches_to_the_next_style_mid_stream(tmp_path, style_model, red_style_model):
    clip = make_clip(tmp_path / "clip.mp4", frames=250, size=(64, 48), audio=False)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "--live", "-o", str(out),
                             "-s", str(style_model), "-s", str(red_style_model), "--temporal-strength", "0",
                             "--stats-json", str(stats)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first progress line: frames are going through
        assert first, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGUSR1)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    figures = json.loads(stats.read_text())
    assert figures["style"] == "red" and figures["style_switches"] == 1 and figures["styles"] == ["seeded", "red"]
    red = red_frames(out)
    switched_at = red.index(True)
    assert 0 < switched_at and all(red[switched_at:]), red  # first style, then the red one to the end


@pytest.mark.slow
def test_two_styles_on_a_file_start_with_the_first(tmp_path, style_model, red_style_model):
    clip = make_clip(tmp_path / "clip.mp4", frames=6, size=(64, 48), audio=False)
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    assert run_stream("-i", str(clip), "-o", str(first), "-s", str(style_model), "-s", str(red_style_model),
                      "--no-dashboard").returncode == 0
    assert run_stream("-i", str(clip), "-o", str(second), "-s", str(red_style_model), "-s", str(style_model),
                      "--no-dashboard").returncode == 0
    assert not any(red_frames(first)) and all(red_frames(second))


def test_an_unknown_second_style_is_one_clear_error(tmp_path, style_model):
    clip = make_clip(tmp_path / "clip.mp4", frames=3, size=(64, 48), audio=False)
    result = run_stream("-i", str(clip), "-o", "null", "-s", str(style_model), "-s", "no_such_style", "--no-dashboard")
    assert_one_line_error(result, "no_such_style")


def test_style_every_follows_the_frames_clock_and_keys_move_the_cycle_on():
    info: dict = {}
    switch = StyleSwitch(["a", "b", "c"], [lambda im: im + 0, lambda im: im + 1, lambda im: im + 2], info, every=2.0)
    image = np.zeros((2, 2, 3), np.uint8)

    def style_at(index: int) -> int:  # frames at 10 fps
        return int(switch.stylize(Frame(image, index, index, Fraction(1, 10), time.monotonic())).max())

    assert [style_at(i) for i in (0, 19, 20, 39, 40, 60)] == [0, 0, 1, 1, 2, 0]
    assert style_at(45) == 2  # a frame still in flight from before the newest keeps its own slot
    switch.next()  # slot 3 shows a; the key moves the cycle on by one
    assert switch.name == "b" and style_at(61) == 1 and style_at(80) == 2
    assert info["style"] == "c" and info["style_switches"] == 5


def test_style_every_on_a_file_switches_on_the_exact_frame(tmp_path, style_model, red_style_model):
    clip = make_clip(tmp_path / "clip.mp4", frames=50, size=(64, 48), fps=25, audio=False)
    out = tmp_path / "out.mp4"
    result = run_stream("-i", str(clip), "-o", str(out), "-s", str(style_model), "-s", str(red_style_model),
                        "--style-every", "1", "--temporal-strength", "0", "--workers", "2", "--no-dashboard")
    assert result.returncode == 0, result.stderr
    assert red_frames(out) == [False] * 25 + [True] * 25


@pytest.mark.parametrize("args, fragment", [(["--style-every", "0", "-s", "B"], "positive"),
                                            (["--style-every", "2"], "two or more styles")])
def test_style_every_errors(tmp_path, style_model, args, fragment):
    clip = make_clip(tmp_path / "clip.mp4", frames=3, size=(64, 48), audio=False)
    args = [str(style_model) if a == "B" else a for a in args]
    result = run_stream("-i", str(clip), "-o", str(tmp_path / "o.mp4"), "-s", str(style_model), *args, "--no-dashboard")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "o.mp4").exists()
