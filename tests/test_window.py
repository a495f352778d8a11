"""The preview window, for real: OpenCV's window on a virtual X screen, quit with the q key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT, make_clip, probe, reaped

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (tests/run.sh installs them)")


@pytest.fixture()
def display():
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": f":{number}"}
    deadline = time.monotonic() + 20  # a busy machine starts Xvfb slowly: wait until it answers
    while subprocess.run(["xdotool", "getdisplaygeometry"], env=env, capture_output=True).returncode != 0:
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"Xvfb :{number} did not start")
        time.sleep(0.2)
    try:
        yield f":{number}"
    finally:
        server.terminate()  # lets Xvfb remove its lock file for the next test's server
        server.wait()


def open_window(args: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    """stream.py with a preview window; the process and its window's X id once it is on screen."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    window = ""
    deadline = time.monotonic() + 90
    while not window and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        found = subprocess.run(["xdotool", "search", "--name", "nstream"], env=env, capture_output=True, text=True)
        window = found.stdout.split()[0] if found.stdout.split() else ""
    if not window:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"the preview window never appeared: {stderr.strip()[-500:]}")
    time.sleep(1.0)
    subprocess.run(["xdotool", "windowactivate", "--sync", window], env=env, capture_output=True)
    return proc, window


def press(window: str, key: str, env: dict) -> None:
    subprocess.run(["xdotool", "key", "--window", window, key], env=env, check=True)


def test_q_in_the_window_stops_and_finalizes(tmp_path, style_model, display):
    clip = make_clip(tmp_path / "long.mp4", frames=500, size=(64, 48))
    out = tmp_path / "out.mp4"
    env = {**os.environ, "DISPLAY": display}
    proc, window = open_window(["-i", str(clip), "-o", "window", "-o", str(out), "-s", str(style_model),
                                "--no-dashboard"], env)
    with reaped(proc):
        press(window, "q", env)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "done:" in stdout
    frames = probe(out)["frames"]
    assert 0 < frames < 500


def test_n_in_the_window_switches_style(tmp_path, style_model, red_style_model, display):
    clip = make_clip(tmp_path / "long.mp4", frames=500, size=(64, 48))
    stats = tmp_path / "stats.json"
    env = {**os.environ, "DISPLAY": display}
    proc, window = open_window(["-i", str(clip), "-o", "window", "-o", "null", "-s", str(style_model),
                                "-s", str(red_style_model), "--live", "--no-dashboard", "--stats-json", str(stats)], env)
    with reaped(proc):
        press(window, "n", env)
        time.sleep(1.0)
        press(window, "q", env)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    figures = json.loads(stats.read_text())
    assert (figures["style"], figures["style_switches"]) == ("red", 1)
