"""Knowledge distillation: a small style network trained to reproduce a teacher's pictures.

``python -m nstream distill --teacher starry_night.jpg --arch lite --data photos/ --out starry.pth``

The teacher is any ``-s`` style (a painting through Magenta's arbitrary network, one of the 26
styles, a blend, a trained checkpoint); the student a ``lite``, ``johnson`` or ``compact`` network
(the teacher's own layout for one style; ``--start-as-teacher`` starts it as the teacher itself). No loss
network is involved: the teacher's pixels are the target, so a student trains well on a CPU.

- Crops: random scale (1.0-1.3 of the crop size on the shorter side), position and flip, then a
  photometric jitter (brightness, contrast, saturation), so the student learns the teacher's
  answer to the pictures a camera gives, not only to clean photos. Batches are never mirrored
  after the teacher has painted them: its answer to a mirrored crop is not its mirrored answer
  (strokes have a direction; MSE 0.006-0.016 between the two, as large as a student's whole error).
- The teacher's outputs are computed once per crop: a pool of ``--pool`` crops and their targets is
  made at the start and kept on disk beside the checkpoint (``pool-<key>.npz``, shared by every
  student of that teacher: the key covers teacher, data, seed, size, count and jitter), and
  training draws its batches from it.
- Loss: mean squared pixel error against the teacher, plus ``--edge-weight`` times the error of
  the horizontal and vertical differences (the strokes' edges, which a pixel loss alone blurs),
  plus ``--ssim-weight`` times 1 - SSIM against the teacher (local contrast and structure),
  plus ``--embedding-weight`` times the style predictor's distance (1 - cosine) between the
  student's picture and the teacher's (:func:`embedding_distance`),
  plus the stability term of ``nstream train`` (``--stability-weight``: the same strokes for a
  slightly moved, noisy frame), so students can flicker less than their teachers.
- ``--init``: go on from a trained student (more steps at a lower rate, or a stability term added)
  instead of from scratch; the pool is shared, so this costs only the steps.
- Resumable (``<out>.state.pt``), a progress bar, previews (input | teacher | student), a seed;
  the checkpoint records its teacher and recipe.
- ``--styles`` instead of ``--teacher``: one ``lite`` for *every* painting (``magenta_lite``, a
  conditioned lite, :mod:`nstream.models.lite`). The teacher is Magenta's arbitrary network; each
  crop of the pool gets the style vector of one of the given images, or a mix of two
  (:mod:`nstream.style_mixes`), and the student learns to paint from the vector as the teacher does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from nstream.cli_args import Parser
from nstream.devices import pick_device
from nstream.errors import NStreamError
from nstream.models.architectures import ARCHITECTURES
from nstream.train import (
    add_run_arguments,
    initial_model,
    list_images,
    random_crops,
    report_step,
    resume,
    save_progress,
    stability_loss,
)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or Parser(prog="nstream distill", description=__doc__)
    teacher = parser.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--teacher", help="the style to reproduce, as stream.py's -s takes it "
                         "(painting.jpg, tf26-NN, a blend, a style name or checkpoint)")
    teacher.add_argument("--styles", action="append", metavar="PATH",
                         help="images or folders of them (repeat): distill one conditioned lite of Magenta's arbitrary "
                              "network on their style vectors and mixes of them, which then paints any painting")
    parser.add_argument("--data", required=True, help="folder of training photos (searched recursively)")
    parser.add_argument("--out", required=True, help="student checkpoint to write (.pth)")
    parser.add_argument("--name", help="style name stored in the checkpoint (default: the file's stem)")
    parser.add_argument("--arch", default="lite", choices=sorted(ARCHITECTURES))
    parser.add_argument("--channels", type=int, help="lite only: channels of its quarter-resolution body "
                        "(default 64; wider holds more of the teacher's texture, slower)")
    parser.add_argument("--detail-channels", type=int, default=0,
                        help="lite only: a full-resolution layer of this many channels before the last one (0: none; "
                             "at least 11; finer strokes, slower); with --init a plain lite, it starts as that network")
    parser.add_argument("--init", help="start from this trained network (a style name or a checkpoint), e.g. more steps "
                        "at a lower --lr for a finished student, or a stability term added to it; its architecture "
                        "and width replace --arch and --channels")
    parser.add_argument("--start-as-teacher", action="store_true",
                        help="a compact student that starts as the teacher itself (Magenta's arbitrary network with "
                             "the painting's style vector folded in: the same pictures), then learns what the loss "
                             "terms add, e.g. the stability term's steadier strokes; --teacher must be a painting")
    parser.add_argument("--image-size", type=int, default=256, help="crop size")
    parser.add_argument("--pool", type=int, default=1000, help="crops whose teacher outputs are computed once and reused")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (a tenth of it for the last fifth)")
    parser.add_argument("--edge-weight", type=float, default=1.0, help="weight of the error on pixel differences")
    parser.add_argument("--ssim-weight", type=float, default=0.0,
                        help="weight of 1 - SSIM against the teacher (luminance, 11x11 Gaussian window): the local "
                             "contrast and structure of the strokes, which a pixel loss averages away (0: off)")
    parser.add_argument("--embedding-weight", type=float, default=0.0,
                        help="weight of 1 - cosine between the style predictor's vectors of the student's and the "
                             "teacher's pictures (Magenta's predictor: the painting's look as a whole, which the pixel "
                             "terms weigh little; one more predictor pass a crop; 0: off)")
    parser.add_argument("--jitter", type=float, default=0.15, help="strength of the photometric jitter (0: none)")
    add_run_arguments(parser)
    return parser


def jitter(x: torch.Tensor, strength: float, rng: random.Random) -> torch.Tensor:
    """Random brightness, contrast and saturation changes of a 1x3xHxW crop in [0, 1]."""
    if strength <= 0:
        return x
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * (1 + rng.uniform(-strength, strength) * 2)  # saturation
    mean = x.mean()
    x = mean + (x - mean) * (1 + rng.uniform(-strength, strength) * 2)  # contrast
    return (x + rng.uniform(-strength, strength) * 0.5).clamp(0, 1)  # brightness


def edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of two Nx3xHxW batches in [0, 1] on luminance, as ``nstream.models.parity.ssim`` measures it
    (11x11 Gaussian window of sigma 1.5, reflected borders), differentiable."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=a.device, dtype=a.dtype).view(1, 3, 1, 1)
    x, y = (a * weights).sum(1, keepdim=True), (b * weights).sum(1, keepdim=True)
    taps = torch.exp(-((torch.arange(11, device=a.device, dtype=a.dtype) - 5) ** 2) / (2 * 1.5**2))
    taps = taps / taps.sum()

    def blur(z: torch.Tensor) -> torch.Tensor:
        z = nn.functional.pad(z, (5, 5, 5, 5), mode="reflect")
        return nn.functional.conv2d(nn.functional.conv2d(z, taps.view(1, 1, 1, 11)), taps.view(1, 1, 11, 1))

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean()


def distillation_loss(student: torch.Tensor, target: torch.Tensor, edge_weight: float,
                      ssim_weight: float = 0.0) -> dict[str, torch.Tensor]:
    terms = {"pixel": ((student - target) ** 2).mean()}
    if edge_weight:
        (sx, sy), (tx, ty) = edges(student), edges(target)
        terms["edge"] = edge_weight * (((sx - tx) ** 2).mean() + ((sy - ty) ** 2).mean())
    if ssim_weight:
        terms["ssim"] = ssim_weight * (1 - ssim(student, target))
    return terms


def embedding_distance(device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``distance(student, target)``: 1 - cosine of Magenta's style-predictor vectors of two Nx3xHxW batches
    in [0, 1], averaged; the student's side differentiable. The predictor describes a picture's style as
    a whole (the arbitrary network paints from that vector), what a pixel loss on crops barely weighs.
    ``bench/student_quality.py``'s fidelity reads the same predictor: judge a student trained with it by
    SSIM and by eye too."""
    from nstream.models.style_spec import pretrained

    predictor, _ = pretrained("magenta_predictor")
    predictor = predictor.to(device).eval().requires_grad_(False)

    def distance(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = predictor(target * 255.0)
        return (1 - nn.functional.cosine_similarity(predictor(student * 255.0), wanted, dim=1)).mean()

    return distance


def teacher_function(spec: str, device: torch.device) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """``teach(batch in [0, 1]) -> batch in [0, 1]`` for any -s style, and what the checkpoint records of it."""
    from nstream.models.style_spec import load_style

    style = load_style(spec)
    model = style.model.to(device).eval()
    vector = None if style.vector is None else torch.from_numpy(style.vector).reshape(1, -1).to(device)

    @torch.inference_mode()
    def teach(x: torch.Tensor) -> torch.Tensor:
        args = (x * 255.0,) if vector is None else (x * 255.0, vector.expand(x.shape[0], -1))
        return (model(*args) / 255.0).clamp(0, 1)

    return teach, {"teacher": spec, "teacher_family": style.family, "teacher_name": style.name,
                   "teacher_arch": style.meta.get("arch", style.family)}


def arbitrary_teacher(device: torch.device) -> tuple[Callable[..., torch.Tensor], dict[str, Any]]:
    """``teach(batch in [0, 1], vectors) -> batch in [0, 1]``: Magenta's arbitrary network, any style vector."""
    from nstream.models.style_spec import FAMILY_NETWORK, pretrained

    model = pretrained(FAMILY_NETWORK["magenta"])[0].to(device).eval()

    @torch.inference_mode()
    def teach(x: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        return (model(x * 255.0, vectors.to(device)) / 255.0).clamp(0, 1)

    return teach, {"teacher": "magenta arbitrary network, any style vector", "teacher_family": "magenta",
                   "teacher_name": FAMILY_NETWORK["magenta"], "teacher_arch": "magenta"}


def pool_key(args: argparse.Namespace, files: list[Path]) -> str:
    """What the pool depends on: the teacher (and its file's bytes), the data, seed, size, count, jitter."""
    digest = hashlib.sha256(json.dumps([args.teacher or args.styles, args.image_size, args.pool, args.seed, args.jitter,
                                        [str(f) for f in files]]).encode())
    if args.teacher and Path(args.teacher).is_file():
        digest.update(Path(args.teacher).read_bytes())
    return digest.hexdigest()[:16]


def make_pool(args: argparse.Namespace, files: list[Path], teach: Callable[..., torch.Tensor],
              device: torch.device, progress: bool, vectors: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``inputs`` and teacher ``targets`` as N x 3 x S x S uint8 (and with ``vectors``, one style vector a
    crop, N x D, the teacher's second input), from the disk cache or computed now."""
    from nstream.progress import step_progress

    path = Path(args.out).with_name(f"pool-{pool_key(args, files)}.npz")  # students of one teacher share it
    if path.is_file():
        with np.load(path) as cached:
            return dict(cached)
    rng = random.Random(args.seed)
    crops = random_crops(files, args.image_size, 1, rng)
    pool = {"inputs": np.empty((args.pool, 3, args.image_size, args.image_size), np.uint8)}
    pool["targets"] = np.empty_like(pool["inputs"])
    if vectors is not None:
        pool["vectors"] = vectors
    with step_progress("teacher outputs", total=args.pool, enabled=progress) as advance:
        for i in range(args.pool):
            x = jitter(next(crops), args.jitter, rng)
            x = torch.round(x * 255) / 255  # what is stored is what the student will see
            pool["inputs"][i] = (x[0] * 255).round().to(torch.uint8).numpy()
            style = () if vectors is None else (torch.from_numpy(vectors[i : i + 1]),)
            pool["targets"][i] = (teach(x.to(device), *style)[0] * 255).round().to(torch.uint8).cpu().numpy()
            advance()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **pool)
    tmp.replace(path)
    return pool


def student_network(arch: str, channels: int | None, detail_channels: int = 0) -> nn.Module:
    if channels is None and not detail_channels:
        return ARCHITECTURES[arch]()
    if arch != "lite":
        raise NStreamError("--channels and --detail-channels shape a lite student; johnson has a fixed shape")
    from nstream.models.lite import LiteNet

    return LiteNet(channels=channels or 64, detail_channels=detail_channels)


def detailed(student: nn.Module, arch: str, detail_channels: int) -> nn.Module:
    """``--init``'s network with ``--detail-channels`` added (starting as the network it was), or as it is."""
    from nstream.models.lite import with_detail

    if not detail_channels or getattr(student, "detail_channels", 0) == detail_channels:
        return student
    if arch != "lite" or student.detail_channels:
        raise NStreamError(f"--detail-channels {detail_channels} with --init needs a plain one-style lite to start from")
    try:
        return with_detail(student, detail_channels)
    except ValueError as exc:
        raise NStreamError(f"--detail-channels: {exc}") from None


def teacher_for(args: argparse.Namespace, device: torch.device
                ) -> tuple[Callable[..., torch.Tensor], dict[str, Any], np.ndarray | None]:
    """The teacher, what the checkpoint records of it, and with ``--styles`` the pool's style vectors."""
    if not args.styles:
        return (*teacher_function(args.teacher, device), None)
    from nstream.style_mixes import sample_vectors, style_images

    images = style_images(args.styles)
    teach, meta = arbitrary_teacher(device)
    meta["styles"] = [image.name for image in images]
    return teach, meta, sample_vectors(images, args.pool, args.seed)


def folded_teacher(spec: str) -> nn.Module:
    """The teacher as a one-style ``compact`` network: Magenta's arbitrary network, the painting's vector folded in."""
    from nstream.models.conditioned import fold_style
    from nstream.models.style_spec import load_style

    style = load_style(spec)
    if style.family != "magenta" or style.vector is None:
        raise NStreamError(f"--start-as-teacher needs a painting (or a blend of paintings) as --teacher, not {spec!r}")
    return fold_style(style.model, torch.from_numpy(style.vector))


def starting_student(args: argparse.Namespace) -> nn.Module:
    """The network to train (``args.arch`` set to its architecture): fresh, or ``--init``'s; with
    ``--styles`` a conditioned lite, which ``--init`` may seed with a one-style lite's weights."""
    if args.init and args.channels is not None:
        raise NStreamError("--init goes on with the width of the network it starts from; leave out --channels")
    if args.start_as_teacher:
        if args.init or args.styles:
            raise NStreamError("--start-as-teacher starts from the teacher: leave out --init and --styles")
        args.arch = "compact"
        return folded_teacher(args.teacher)
    if not args.styles:
        if args.init:
            student, args.arch = initial_model(args.init, args.arch)  # its own architecture and width
            student = detailed(student, args.arch, args.detail_channels)
            args.detail_channels = getattr(student, "detail_channels", 0)  # the recipe records what it has
            return student
        return student_network(args.arch, args.channels, args.detail_channels)
    from nstream.models.architectures import MAGENTA_STYLE_DIM
    from nstream.models.lite import LiteNet, conditioned_from

    args.arch = "magenta_lite"
    if not args.init:
        return LiteNet(channels=args.channels or 64, style_dim=MAGENTA_STYLE_DIM)
    start, arch = initial_model(args.init, args.arch)
    if arch == "magenta_lite":
        return start
    if arch != "lite":
        raise NStreamError(f"--styles trains a conditioned lite: --init must be a lite network, not {arch}")
    return conditioned_from(start, MAGENTA_STYLE_DIM)


def distill(args: argparse.Namespace, progress: bool = True,
            on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Distill (or resume distilling) a student; returns the final loss terms and timing."""
    device = pick_device(args.device)
    if args.pool < args.batch_size:
        raise NStreamError(f"--pool {args.pool} is smaller than --batch-size {args.batch_size}")
    student = starting_student(args)
    torch.manual_seed(args.seed)
    files = list_images(args.data)
    teach, teacher_meta, vectors = teacher_for(args, device)
    pool = make_pool(args, files, teach, device, progress, vectors)
    if "vectors" in pool:  # real styles for the engines' checks (models/lite.py)
        references = student.reference_styles
        references.copy_(torch.from_numpy(pool["vectors"][: len(references)]))
    student = student.to(device).train()
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    out = Path(args.out)
    state = resume(student, optimizer, out.with_suffix(".state.pt"), device)
    step = int(state["step"]) if state else 0
    recipe = ("arch", "channels", "detail_channels", "image_size", "pool", "batch_size", "max_steps", "lr", "edge_weight",
              "ssim_weight", "embedding_weight", "stability_weight", "jitter", "seed", "init", "start_as_teacher")
    meta = {"name": args.name or out.stem, "distilled": True, **teacher_meta,
            "style_image": Path(args.teacher).name if args.teacher else None,
            "loss_net": "none (distilled)", "trained_on": Path(args.data).name,
            "recipe": {k: getattr(args, k) for k in recipe}}
    start, first_step = time.perf_counter(), step
    step, terms = train_steps(args, student, optimizer, pool, step, device, progress, on_step, lambda at: save_progress(
        out, student, args.arch, meta, optimizer, at))
    seconds = time.perf_counter() - start
    return {"steps": step, "losses": terms, "seconds_per_step": seconds / max(1, step - first_step)}


def train_steps(args: argparse.Namespace, student: nn.Module, optimizer: torch.optim.Optimizer, pool: dict[str, np.ndarray],
                step: int, device: torch.device, progress: bool, on_step: Callable[[int, dict[str, float]], None] | None,
                checkpoint: Callable[[int], None]) -> tuple[int, dict[str, float]]:
    """From ``step`` to ``--max-steps`` on batches of the pool; the last step reached and its loss terms."""
    from nstream.progress import step_progress

    order = np.random.default_rng(args.seed + step)  # a resumed run draws on, it does not replay the first batches
    perturb = torch.Generator().manual_seed(args.seed + step)
    out, terms = Path(args.out), {}
    embedding = embedding_distance(device) if args.embedding_weight else None
    with step_progress("distilling", total=args.max_steps, completed=step, enabled=progress) as advance:
        while step < args.max_steps:
            for group in optimizer.param_groups:
                group["lr"] = args.lr * (0.1 if step >= 0.8 * args.max_steps else 1.0)
            pick = order.integers(0, len(pool["inputs"]), size=args.batch_size)
            x = torch.from_numpy(pool["inputs"][pick]).to(device).float() / 255
            target = torch.from_numpy(pool["targets"][pick]).to(device).float() / 255
            style = (torch.from_numpy(pool["vectors"][pick]).to(device),) if "vectors" in pool else ()
            output = student(x * 255.0, *style) / 255.0
            losses = distillation_loss(output, target, args.edge_weight, args.ssim_weight)
            if embedding is not None:
                losses["embedding"] = args.embedding_weight * embedding(output, target)
            if args.stability_weight:
                network = (lambda pixels, style=style: student(pixels, *style)) if style else student
                losses["stability"] = args.stability_weight * stability_loss(
                    network, x, output, args.stability_shift, args.stability_noise, perturb)
            losses["total"] = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            step += 1
            terms = report_step(step, losses, on_step, advance)
            if step % args.checkpoint_every == 0 or step == args.max_steps:
                checkpoint(step)
            if args.preview_every and step % args.preview_every == 0:
                save_preview(x, target, output, out.with_name(f"{out.stem}.preview-{step:06d}.png"))
    return step, terms


def save_preview(x: torch.Tensor, target: torch.Tensor, output: torch.Tensor, path: Path) -> None:
    """The first crop of the batch: input | teacher | student."""
    row = torch.cat([x[0], target[0], output[0].detach().clamp(0, 1)], dim=2)
    Image.fromarray((row.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(path)
