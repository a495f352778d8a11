"""The light install: stream.py with ONNX Runtime alone, PyTorch absent (tests/without_torch.py hides
it), on the graphs shipped beside the bundled networks; those graphs must match their checkpoints."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, assert_one_line_error, make_clip, probe
from nstream.engines.graph_engine import GraphEngine
from nstream.models.checkpoints import load_style_model
from nstream.models.style_spec import GRAPH_SUFFIX

WITHOUT_TORCH = Path(__file__).resolve().parent / "without_torch.py"


def run_without_torch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WITHOUT_TORCH), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_install_requires_no_torch() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = config["options"]["install_requires"]
    assert "torch" not in required and "onnxruntime" in required
    assert "torch" in config["options.extras_require"]["torch"]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["starry_night", "wave_compact", "wave.jpg", "tf26-03"])
def test_stream_runs_without_torch(tmp_path: Path, style: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10, size=(96, 64))
    out = tmp_path / "out.mp4"
    result = run_without_torch(str(ROOT / "stream.py"), "-i", str(clip), "-o", str(out), "-s", style,
                               "--no-dashboard")
    assert result.returncode == 0, result.stderr
    assert "without_torch: imported" not in result.stderr
    src, dst = probe(clip), probe(out)
    assert dst["frames"] == src["frames"] == 10 and dst["audio_codec"] == "aac"
    assert np.abs(dst["first"].astype(int) - src["first"].astype(int)).mean() > 10
    # the same style with PyTorch installed (its own validated export) gives the same picture
    full = tmp_path / "full.mp4"
    assert subprocess.run([sys.executable, str(ROOT / "stream.py"), "-i", str(clip), "-o", str(full), "-s", style,
                           "--no-dashboard"], cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    error = np.mean((probe(full)["first"].astype(float) - dst["first"].astype(float)) ** 2)
    assert error < 2.0  # x264 on two nearly identical frames


def test_what_needs_torch_says_so_in_one_line(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=False)
    for extra in (["-s", "starry_night_johnson"], ["--engine", "torch"], ["--precision", "int8"]):
        result = run_without_torch(str(ROOT / "stream.py"), "-i", str(clip), "-o", str(tmp_path / "x.mp4"),
                                   "--no-dashboard", *extra)
        assert_one_line_error(result, "nstream[torch]")
    offline = run_without_torch(str(ROOT / "offline.py"), "-c", "a.jpg", "-s", "b.jpg", "-o", "c.png")
    assert_one_line_error(offline, "nstream[torch]")
    train = run_without_torch(str(ROOT / "nstream" / "__main__.py"), "train")
    assert_one_line_error(train, "nstream[torch]")
    styles = run_without_torch(str(ROOT / "nstream" / "__main__.py"), "styles")
    assert styles.returncode == 0 and "starry_night_lite" in styles.stdout and "tf26-25" in styles.stdout
    assert any("wave_compact" in line and "compact (ONNX graph)" in line for line in styles.stdout.splitlines())


def test_shipped_graphs_match_their_checkpoints() -> None:
    """Every graph the light install runs equals its checkpoint (python -m nstream export-bundled
    rewrites them when a checkpoint changes)."""
    from nstream.engines.bundled import bundled_networks
    from nstream.engines.export import check_styles
    from nstream.engines.validate import psnr

    rng = np.random.default_rng(0)
    frame = rng.uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)
    for checkpoint, arch in bundled_networks():
        graph = checkpoint.with_suffix(GRAPH_SUFFIX)
        assert graph.is_file(), f"{graph} missing: run python -m nstream export-bundled"
        engine = GraphEngine(graph)
        model, _ = load_style_model(checkpoint)
        with torch.inference_mode():
            if arch == "magenta_predictor":
                square = rng.uniform(0, 255, (1, 3, 256, 256)).astype(np.float32)
                want, got = model(torch.from_numpy(square)).numpy(), engine.infer(square)
                assert np.linalg.norm(got - want) < 1e-3 * np.linalg.norm(want), graph
                continue
            style = check_styles(model, 1)[0]
            args = (torch.from_numpy(frame),) if style is None else (torch.from_numpy(frame), torch.from_numpy(style))
            assert psnr(model(*args).numpy(), engine.infer(frame, style)) > 60, graph
