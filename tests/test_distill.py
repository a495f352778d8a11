"""nstream distill: a student network learns to reproduce a teacher style."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from nstream.distill import build_parser, distill
from nstream.errors import NStreamError
from nstream.models.checkpoints import load_style_model

PAINTINGS = ROOT / "nstream" / "paintings"


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(PAINTINGS.glob("*.jpg"))[:4]:  # real pictures that ship with the package
        Image.open(path).convert("RGB").resize((96, 96)).save(folder / f"{path.stem}.png")
    return folder


def args_for(photos: Path, out: Path, steps: int, **extra: object) -> argparse.Namespace:
    argv = ["--teacher", "tf26-07", "--data", str(photos), "--out", str(out), "--image-size", "64", "--pool", "8",
            "--batch-size", "2", "--max-steps", str(steps), "--checkpoint-every", "10", "--lr", "5e-3"]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return build_parser().parse_args(argv)


@pytest.mark.slow
def test_student_learns_the_teacher_and_resumes(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "student.pth"
    totals: list[float] = []
    result = distill(args_for(photos, out, 40), progress=False, on_step=lambda s, t: totals.append(t["pixel"]))
    assert result["steps"] == 40
    assert np.mean(totals[-5:]) < 0.6 * np.mean(totals[:5]), totals
    model, meta = load_style_model(out)
    assert meta["arch"] == "lite" and meta["teacher"] == "tf26-07" and meta["teacher_family"] == "tf26"
    assert meta["distilled"] and meta["recipe"]["pool"] == 8 and meta["steps"] == 40
    (pool,) = tmp_path.glob("pool-*.npz")
    made = pool.stat().st_mtime_ns
    seen: list[int] = []
    result = distill(args_for(photos, out, 50), progress=False, on_step=lambda s, t: seen.append(s))
    assert seen[0] == 41 and result["steps"] == 50  # resumed, not restarted
    assert pool.stat().st_mtime_ns == made  # the teacher's outputs were computed once


@pytest.mark.slow
def test_stability_term_and_previews(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "steady.pth"
    terms: list[dict[str, float]] = []
    distill(args_for(photos, out, 4, stability_weight=10, preview_every=2), progress=False,
            on_step=lambda s, t: terms.append(t))
    assert all("stability" in t and "edge" in t for t in terms)
    preview = Image.open(out.with_name("steady.preview-000004.png"))
    assert preview.size == (3 * 64, 64)  # input | teacher | student


@pytest.mark.slow
def test_init_goes_on_from_a_trained_student(photos: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.pth"
    distill(args_for(photos, first, 2), progress=False)
    start, _ = load_style_model(first)
    out = tmp_path / "more.pth"
    distill(args_for(photos, out, 1, init=first, lr=0), progress=False)  # lr 0: the weights stay the init's
    model, meta = load_style_model(out)
    assert meta["recipe"]["init"] == str(first) and meta["recipe"]["arch"] == "lite" and meta["steps"] == 1
    for (name, a), b in zip(start.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_init_refuses_a_width(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(NStreamError, match="--channels"):
        distill(args_for(photos, tmp_path / "x.pth", 1, init="starry_night_lite", channels=96), progress=False)


def test_ssim_loss_measures_what_the_bench_measures() -> None:
    from nstream.distill import distillation_loss, ssim
    from nstream.models.parity import ssim as measured

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)

    def batch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255

    assert ssim(batch(a), batch(b)).item() == pytest.approx(measured(a, b), abs=0.01)
    assert ssim(batch(a), batch(a)).item() == pytest.approx(1.0)
    terms = distillation_loss(batch(b).requires_grad_(), batch(a), edge_weight=1, ssim_weight=0.5)
    assert set(terms) == {"pixel", "edge", "ssim"}
    terms["ssim"].backward()
