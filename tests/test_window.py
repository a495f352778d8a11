"""The preview window, for real: OpenCV's window on a virtual X screen, quit with the q key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT, make_clip, probe

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (tests/run.sh installs them)")


@pytest.fixture()
def display():
    number = 90 + os.getpid() % 9
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield f":{number}"
    finally:
        server.kill()
        server.wait()


def test_q_in_the_window_stops_and_finalizes(tmp_path, style_model, display):
    clip = make_clip(tmp_path / "long.mp4", frames=500, size=(64, 48))
    out = tmp_path / "out.mp4"
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", "window", "-o", str(out),
                             "-s", str(style_model), "--no-dashboard"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        window = ""
        deadline = time.monotonic() + 90
        while not window and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            found = subprocess.run(["xdotool", "search", "--name", "nstream"], env=env, capture_output=True, text=True)
            window = found.stdout.split()[0] if found.stdout.split() else ""
        assert window, "the preview window never appeared"
        time.sleep(1.0)
        subprocess.run(["xdotool", "windowactivate", "--sync", window], env=env, capture_output=True)
        subprocess.run(["xdotool", "key", "--window", window, "q"], env=env, check=True)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "done:" in stdout
    frames = probe(out)["frames"]
    assert 0 < frames < 500
