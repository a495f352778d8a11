"""nstream distill: a student network learns to reproduce a teacher style."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, SHARED
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
def test_stability_and_embedding_terms_and_previews(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "steady.pth"
    terms: list[dict[str, float]] = []
    distill(args_for(photos, out, 4, stability_weight=10, embedding_weight=2, preview_every=2), progress=False,
            on_step=lambda s, t: terms.append(t))
    assert all("stability" in t and "edge" in t and t["embedding"] > 0 for t in terms)
    assert load_style_model(out)[1]["recipe"]["embedding_weight"] == 2
    preview = Image.open(out.with_name("steady.preview-000004.png"))
    assert preview.size == (3 * 64, 64)  # input | teacher | student


@pytest.mark.slow
def test_init_goes_on_from_a_trained_student(photos: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.pth"
    distill(args_for(photos, first, 2), progress=False)
    start, _ = load_style_model(first)
    detailed = tmp_path / "detailed.pth"
    distill(args_for(photos, detailed, 1, init=first, detail_channels=12, lr=0), progress=False)
    assert load_style_model(detailed)[0].detail_channels == 12 and load_style_model(detailed)[1]["recipe"]["detail_channels"] == 12
    out = tmp_path / "more.pth"
    distill(args_for(photos, out, 1, init=first, lr=0), progress=False)  # lr 0: the weights stay the init's
    model, meta = load_style_model(out)
    assert meta["recipe"]["init"] == str(first) and meta["recipe"]["arch"] == "lite" and meta["steps"] == 1
    for (name, a), b in zip(start.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_compact_student_starts_as_the_teacher(photos: Path, tmp_path: Path) -> None:
    """--start-as-teacher: the student is the arbitrary network with the painting folded in, so it paints
    the teacher's pictures, and while it does, every batch's target is its own answer (a batch mirrored
    after the teacher painted it would not be: strokes have a direction). Only a painting can be folded."""
    from nstream.models.style_spec import load_style

    args = args_for(photos, tmp_path / "wave.pth", 12, lr=0)
    args.teacher, args.start_as_teacher = str(PAINTINGS / "wave.jpg"), True
    errors: list[float] = []
    distill(args, progress=False, on_step=lambda s, t: errors.append(t["pixel"]))
    assert len(errors) == 12 and max(errors) < 1e-4, errors  # 8-bit targets: ~1e-6
    student, meta = load_style_model(tmp_path / "wave.pth")
    assert meta["arch"] == "compact" and meta["recipe"]["start_as_teacher"] and meta["teacher_family"] == "magenta"
    teacher = load_style(str(PAINTINGS / "wave.jpg"))
    x = torch.from_numpy(np.array(Image.open(next(photos.iterdir())))).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        error = (student(x) - teacher.model(x, torch.from_numpy(teacher.vector)[None])).abs().mean()
    assert error < 0.5  # the teacher's picture, within the checkpoint's half precision (0..255)
    args = args_for(photos, tmp_path / "x.pth", 1)
    args.start_as_teacher = True  # tf26-07: a style of the 26-style network, no painting to fold
    with pytest.raises(NStreamError, match="needs a painting"):
        distill(args, progress=False)
    args.init = "the_scream_lite"
    with pytest.raises(NStreamError, match="leave out --init"):
        distill(args, progress=False)


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


def test_the_embedding_term_is_the_fidelity_measures_distance_and_trains_the_student_side() -> None:
    """0 for the same picture; the painting's own vector is nearer the teacher's Starry Night than a photo's is;
    the gradient reaches the student's pixels only."""
    from nstream.distill import embedding_distance
    from nstream.models.fidelity import embedding
    from nstream.models.style_spec import predictor_input

    photos = sorted((SHARED / "content").glob("*.jpg"))
    if not photos:
        pytest.skip("needs ../shared/data/content")
    painting = np.asarray(Image.open(ROOT / "nstream" / "paintings" / "starry_night.jpg").convert("RGB"))
    photo = np.asarray(Image.open(photos[0]).convert("RGB"))

    def batch(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(predictor_input(image)) / 255  # the predictor's own 256x256 square

    distance = embedding_distance(torch.device("cpu"))
    student = batch(photo).requires_grad_()
    target = batch(painting).requires_grad_()
    far = distance(student, target)
    far.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and target.grad is None
    cosine = float(embedding(photo) @ embedding(painting))
    assert far.item() == pytest.approx(1 - cosine, abs=0.02)  # fidelity's unit vectors, its crop
    assert distance(batch(painting), batch(painting)).item() == pytest.approx(0.0, abs=1e-5)
    assert far.item() > 0.1


def test_a_conditioned_lite_starts_as_its_plain_student_and_keeps_its_vector_input(tmp_path: Path) -> None:
    from nstream.models.checkpoints import save_style
    from nstream.models.lite import LiteNet, conditioned_from

    plain, _ = load_style_model("nstream/styles/the_scream_lite.pth")  # a plain lite
    conditioned = conditioned_from(plain, 100)
    x = torch.rand(2, 3, 64, 96) * 255
    vectors = torch.randn(2, 100)
    with torch.no_grad():
        assert torch.allclose(conditioned(x, vectors), plain(x), atol=1e-2)  # every vector paints the old style
        conditioned.in1.gamma.weight.normal_(0, 0.1)  # once the norms depend on the vector, so does the picture
        first, second = conditioned(x, vectors), conditioned(x, vectors.flip(0))
    assert (first - second).abs().mean() > 1
    path = save_style(tmp_path / "any.pth", conditioned, "magenta_lite", {"name": "any"})
    loaded, meta = load_style_model(path)
    assert isinstance(loaded, LiteNet) and loaded.style_dim == 100 and meta["arch"] == "magenta_lite"
    with torch.no_grad():
        assert torch.allclose(loaded(x, vectors), first, atol=0.2)  # stored in half precision
    with pytest.raises(NStreamError, match="many styles"):
        from nstream.models.style_spec import load_style

        load_style(str(path))


def test_a_detail_layer_starts_as_the_plain_student_and_survives_its_checkpoint_and_onnx(tmp_path: Path) -> None:
    from nstream.engines import create_engine
    from nstream.models.checkpoints import save_style
    from nstream.models.lite import LiteNet, with_detail

    torch.manual_seed(0)
    plain, _ = load_style_model("nstream/styles/the_scream_lite.pth")  # a plain lite
    detailed = with_detail(plain, 16)
    x = torch.rand(1, 3, 96, 128) * 255
    with torch.no_grad():
        assert torch.equal(detailed(x), plain(x))  # a pass-through until trained
        detailed.out.weight[:, 11:16].normal_(0, 0.05)  # once its own channels count, the picture changes
        changed = detailed(x)
    assert (changed - plain(x)).abs().mean() > 1
    loaded, _ = load_style_model(save_style(tmp_path / "d.pth", detailed, "lite", {"name": "d"}))
    assert isinstance(loaded, LiteNet) and loaded.detail_channels == 16 and loaded.head_channels == 8
    with torch.no_grad():
        assert torch.allclose(loaded(x), changed, rtol=0.01, atol=0.5)  # stored in half precision
    engine = create_engine("onnxruntime", loaded, "cpu", cache=tmp_path / "engines")
    assert engine.psnr > 60  # the exported graph matches PyTorch
    with pytest.raises(ValueError, match="at least 11"):
        with_detail(plain, 8)


def test_detail_channels_need_a_plain_lite(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(NStreamError, match="johnson has a fixed shape"):
        distill(args_for(photos, tmp_path / "x.pth", 1, arch="johnson", detail_channels=16), progress=False)
    with pytest.raises(NStreamError, match="at least 11"):
        distill(args_for(photos, tmp_path / "y.pth", 1, init="the_scream_lite", detail_channels=4), progress=False)
    with pytest.raises(NStreamError, match="plain one-style lite"):  # starry_night_lite has a 16-channel one
        distill(args_for(photos, tmp_path / "z.pth", 1, init="starry_night_lite", detail_channels=12), progress=False)


@pytest.mark.slow
def test_one_student_learns_to_paint_from_the_style_vector(photos: Path, tmp_path: Path) -> None:
    """distill --styles: the pool pairs crops with vectors of the style images (and mixes), the teacher is
    the arbitrary network, and the student's error against it falls for the vectors it is given."""
    out = tmp_path / "any.pth"
    argv = ["--styles", str(PAINTINGS / "wave.jpg"), "--styles", str(PAINTINGS / "udnie.jpg"), "--data", str(photos),
            "--out", str(out), "--image-size", "64", "--pool", "8", "--batch-size", "4", "--max-steps", "60",
            "--checkpoint-every", "30", "--lr", "5e-3"]
    totals: list[float] = []
    distill(build_parser().parse_args(argv), progress=False, on_step=lambda s, t: totals.append(t["pixel"]))
    assert np.mean(totals[-5:]) < 0.6 * np.mean(totals[:5]), totals
    (pool_file,) = tmp_path.glob("pool-*.npz")
    with np.load(pool_file) as pool:
        assert pool["vectors"].shape == (8, 100) and pool["targets"].shape == pool["inputs"].shape == (8, 3, 64, 64)
    student, meta = load_style_model(out)
    assert meta["arch"] == "magenta_lite" and meta["styles"] == ["wave.jpg", "udnie.jpg"] and meta["steps"] == 60
    with np.load(pool_file) as pool:
        x = torch.from_numpy(pool["inputs"]).float()
        target, own = torch.from_numpy(pool["targets"]).float(), torch.from_numpy(pool["vectors"])
    with torch.no_grad():
        right = ((student(x, own) - target) ** 2).mean()
        wrong = ((student(x, own.roll(1, 0) * 0 + own.mean(0)) - target) ** 2).mean()
    assert right < wrong  # it paints from the vector, not one average style


def test_styles_and_teacher_are_one_or_the_other(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--styles", "a", "--teacher", "b", "--data", "x", "--out", "y"])
    args = build_parser().parse_args(["--styles", str(tmp_path / "missing"), "--data", str(photos),
                                      "--out", str(tmp_path / "x.pth")])
    with pytest.raises(NStreamError, match="style images not found"):
        distill(args, progress=False)
