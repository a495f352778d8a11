"""Johnson et al. (2016) training: perceptual losses through a VGG16 loss network.

``python -m nstream train --style IMG --data DIR --out FILE``. Content loss at relu2_2, Gram
style loss at relu1_2/relu2_2/relu3_3/relu4_3, total variation, Adam on random crops. Resumable:
the run state is saved next to the output every ``--checkpoint-every`` steps. Optional stability
term (``--stability-weight``, Wang et al. 2020 compound regularization) against flicker on video.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from nstream.cli_args import Parser
from nstream.devices import pick_device
from nstream.errors import NStreamError
from nstream.losses import PerceptualLoss, style_grams
from nstream.lossnet import LOSS_NETS
from nstream.media.formats import IMAGE_SUFFIXES
from nstream.models.architectures import ARCHITECTURES
from nstream.models.checkpoints import save_style

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise NStreamError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NStreamError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return files


def load_rgb(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """An image as a 1x3xHxW float tensor in [0, 1], optionally shrunk to ``max_side``."""
    try:
        image = Image.open(path).convert("RGB")
    except (OSError, ValueError) as exc:
        raise NStreamError(f"cannot read image {path}: {exc}") from None
    if max_side and max(image.size) != max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def random_crops(files: list[Path], size: int, batch: int, rng: random.Random) -> Iterator[torch.Tensor]:
    """Endless batches of random square crops (shorter side scaled to ~1.15x size), flipped at random."""
    while True:
        tiles = []
        for path in rng.sample(files, k=min(batch, len(files))) if len(files) >= batch else rng.choices(files, k=batch):
            image = Image.open(path).convert("RGB")
            scale = size * rng.uniform(1.0, 1.3) / min(image.size)
            image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BILINEAR)
            left, top = rng.randint(0, image.width - size), rng.randint(0, image.height - size)
            tile = image.crop((left, top, left + size, top + size))
            if rng.random() < 0.5:
                tile = tile.transpose(Image.FLIP_LEFT_RIGHT)
            tiles.append(torch.from_numpy(np.asarray(tile, dtype=np.float32) / 255.0).permute(2, 0, 1))
        yield torch.stack(tiles)


class TrainingLoss(PerceptualLoss):
    """The weighted content, Gram style and (absolute) TV terms against one style image, whose Gram
    targets are computed once; ``loss(output, content)`` returns the terms and their ``total``."""

    def __init__(self, encoder: nn.Module, style: torch.Tensor, weights: dict[str, float],
                 content_layers: Sequence[str] = (CONTENT_LAYER,), style_layers: Sequence[str] = STYLE_LAYERS) -> None:
        super().__init__(encoder, content_layers, style_layers, tv_power=1)
        self.weights = weights
        self.set_style(style_grams(encoder, [style], [1.0], style_layers))

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {k: self.weights[k] * v for k, v in self.terms(output, content).items()}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms


def random_warp(batch: int, shift_px: float, size: int, generator: torch.Generator, device: torch.device
                ) -> torch.Tensor:
    """Per-image affine matrices for a small random motion: a shift of up to ``shift_px`` pixels,
    up to 1 degree of rotation and 2% zoom, what a hand-held camera does between two frames."""
    u = torch.rand(batch, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * (torch.pi / 180)
    scale = 1 + 0.02 * u[:, 1]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    shift = u[:, 2:] * (2 * shift_px / size)  # affine_grid works in [-1, 1] units
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    return theta.to(device)


def warp(x: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` moved by ``theta`` and the mask of pixels that came from inside the frame."""
    grid = nn.functional.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    moved = nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ones = torch.ones_like(x[:, :1])
    inside = nn.functional.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved, (inside > 0.999).to(x.dtype)


def stability_loss(model: nn.Module, content: torch.Tensor, output: torch.Tensor, shift_px: float, noise: float,
                   generator: torch.Generator) -> torch.Tensor:
    """Wang et al. (2020) compound regularization: stylizing a slightly moved, noisy frame must
    give the moved stylization of the clean frame, ||f(W(x) + n) - W(f(x))||^2, so small input
    changes (sensor noise, camera shake) do not turn into flicker. Frames in [0, 1]."""
    theta = random_warp(content.shape[0], shift_px, content.shape[-1], generator, content.device)
    moved, mask = warp(content, theta)
    n = torch.randn(moved.shape, generator=generator).to(moved.device) * noise
    perturbed = model(((moved + n).clamp(0, 1)) * 255.0) / 255.0
    target, _ = warp(output, theta)
    return (((perturbed.float() - target.float()) ** 2) * mask).sum() / (mask.sum() * 3).clamp_min(1.0)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or Parser(prog="nstream train", description=__doc__)
    parser.add_argument("--style", required=True, help="style image")
    parser.add_argument("--data", required=True, help="folder of training images (searched recursively)")
    parser.add_argument("--out", required=True, help="checkpoint to write (.pth)")
    parser.add_argument("--name", help="style name stored in the checkpoint (default: the style file's stem)")
    parser.add_argument("--arch", default="johnson", choices=sorted(ARCHITECTURES))
    parser.add_argument("--loss-net", default="imagenet", choices=LOSS_NETS,
                        help="imagenet: torchvision VGG16 weights; random: seeded random VGG16 (no download); magenta: the "
                             "MobileNetV2 of Magenta's style predictor (shipped, trained from ImageNet)")
    parser.add_argument("--vgg-weights", help="local VGG16 state dict instead of torchvision's download")
    parser.add_argument("--image-size", type=int, default=256, help="training crop size")
    parser.add_argument("--style-size", type=int, default=256, help="longest side of the style image")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--style-weight", type=float, default=1e5)
    parser.add_argument("--tv-weight", type=float, default=1e-2)
    parser.add_argument("--init", help="start from this trained style network (a style name or a checkpoint) instead of "
                        "from scratch, e.g. to add --stability-weight to a bundled style; its architecture replaces "
                        "--arch and there is no identity warm-up")
    parser.add_argument("--identity-steps", type=int, default=200,
                        help="first teach the network to reproduce its input (pixel loss, no VGG): style training then "
                             "starts from sharp content instead of noise and converges in far fewer steps")
    add_run_arguments(parser)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``train`` and ``distill`` share: the stability term, seed, checkpoints, previews, device."""
    parser.add_argument("--stability-weight", type=float, default=0.0,
                        help="weight of the flicker-resistance term (Wang et al. 2020: the same strokes for a moved, "
                             "noisy frame; 0: off; costs one more network pass)")
    parser.add_argument("--stability-shift", type=float, default=2.0, help="largest random shift in pixels for that term")
    parser.add_argument("--stability-noise", type=float, default=0.02, help="std of the Gaussian noise, frames in [0, 1]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--preview-every", type=int, default=0, help="write a preview PNG every N steps (0: off)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")


def train(args: argparse.Namespace, progress: bool = True,
          on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a style network; returns the final loss terms and timing.

    ``on_step(step, terms)`` sees every step's loss terms (tests check convergence with it).
    """
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    files = list_images(args.data)
    weights = {"content": args.content_weight, "style": args.style_weight, "tv": args.tv_weight}
    criterion = training_loss(args, weights, device)
    model, arch = initial_model(args.init, args.arch)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    out = Path(args.out)
    state_path = out.with_suffix(".state.pt")
    state = resume(model, optimizer, state_path, device)
    step = int(state["step"]) if state else 0
    if state:
        rng.setstate(_tuple_state(state["rng"]))
    batches = random_crops(files, args.image_size, args.batch_size, rng)
    if step == 0 and args.identity_steps and not args.init:
        _identity_warmup(model, batches, args.identity_steps, args.lr, device, progress)
    meta = checkpoint_meta(args, weights)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    terms: dict[str, float] = {}
    perturb = torch.Generator().manual_seed(args.seed + step)  # a resumed run does not replay the first warps
    start, first_step = time.perf_counter(), step
    from nstream.progress import step_progress

    with step_progress("training", total=args.max_steps, completed=step, enabled=progress) as advance:
        while step < args.max_steps:
            content = next(batches).to(device)
            with torch.autocast(device.type, enabled=use_amp):
                output = model(content * 255.0) / 255.0
                losses = criterion(output.float(), content)
                if args.stability_weight:
                    losses["stability"] = args.stability_weight * stability_loss(
                        model, content, output, args.stability_shift, args.stability_noise, perturb)
                    losses["total"] = losses["total"] + losses["stability"]
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(losses["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            terms = report_step(step, losses, on_step, advance)
            if step % args.checkpoint_every == 0 or step == args.max_steps:
                save_progress(out, model, arch, meta, optimizer, step, rng=_list_state(rng.getstate()))
            if args.preview_every and step % args.preview_every == 0:
                _save_preview(output, out.with_name(f"{out.stem}.preview-{step:06d}.png"))
    seconds = time.perf_counter() - start
    return {"steps": step, "losses": terms, "seconds_per_step": seconds / max(1, step - first_step)}


def training_layers(loss_net: str) -> tuple[list[str], list[str]]:
    """(content layers, style layers) of the training loss: VGG16's (Johnson et al.), or MobileNetV2's."""
    from nstream.lossnet import MAGENTA_CONTENT_LAYERS, MAGENTA_STYLE_LAYERS

    if loss_net == "magenta":
        return list(MAGENTA_CONTENT_LAYERS), list(MAGENTA_STYLE_LAYERS)
    return [CONTENT_LAYER], list(STYLE_LAYERS)


def training_loss(args: argparse.Namespace, weights: dict[str, float], device: torch.device) -> TrainingLoss:
    """The loss network of ``--loss-net`` and the style image's targets, on ``device``."""
    from nstream.lossnet import build_encoder

    style = load_rgb(args.style, args.style_size).to(device)
    content_layers, style_layers = training_layers(args.loss_net)
    encoder = build_encoder(args.loss_net, [*content_layers, *style_layers], "vgg16", args.vgg_weights,
                            seed=args.seed).to(device)
    return TrainingLoss(encoder, style, weights, content_layers, style_layers)


def checkpoint_meta(args: argparse.Namespace, weights: dict[str, float]) -> dict[str, Any]:
    """What a trained checkpoint records of its recipe."""
    return {
        "name": args.name or Path(args.style).stem,
        "style_image": Path(args.style).name,
        "loss_net": "file" if args.vgg_weights else args.loss_net,
        "trained_on": str(Path(args.data).name),
        "image_size": args.image_size,
        "style_size": args.style_size,
        "batch_size": args.batch_size,
        "weights": weights,
        "seed": args.seed,
        "stability_weight": args.stability_weight,
        **({"init": args.init} if args.init else {}),
    }


def report_step(step: int, losses: dict[str, torch.Tensor], on_step: Callable[[int, dict[str, float]], None] | None,
                advance: Callable[[str], None]) -> dict[str, float]:
    """A finished step's loss terms as numbers, given to ``on_step`` and shown on the progress bar."""
    terms = {k: float(v.detach()) for k, v in losses.items()}
    if on_step is not None:
        on_step(step, terms)
    advance(" ".join(f"{k} {v:.3g}" for k, v in terms.items()))
    return terms


def resume(model: nn.Module, optimizer: torch.optim.Optimizer, state_path: Path, device: torch.device
           ) -> dict[str, Any] | None:
    """Load a stopped run's network and optimizer from ``state_path`` if it exists; its state, or None."""
    if not state_path.is_file():
        return None
    state = torch.load(state_path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def save_progress(out: Path, model: nn.Module, arch: str, meta: dict[str, Any], optimizer: torch.optim.Optimizer,
                  step: int, **extra: Any) -> None:
    """The checkpoint as it stands (a usable style) and the state to resume from (``<out>.state.pt``)."""
    save_style(out, model, arch, {**meta, "steps": step})
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, **extra},
               out.with_suffix(".state.pt"))


def initial_model(init: str | None, arch: str) -> tuple[nn.Module, str]:
    """The network training starts from: a fresh ``arch``, or the trained one ``init`` names (and its arch)."""
    if not init:
        return ARCHITECTURES[arch](), arch
    from nstream.models.checkpoints import load_style_model
    from nstream.models.registry import resolve_style

    model, meta = load_style_model(resolve_style(init).path)
    return model, str(meta["arch"])


def _identity_warmup(model: nn.Module, batches: Iterator[torch.Tensor], steps: int, lr: float, device: torch.device,
                     progress: bool) -> None:
    from nstream.progress import step_progress

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    with step_progress("identity warm-up", total=steps, enabled=progress) as advance:
        for _ in range(steps):
            content = next(batches).to(device)
            loss = nn.functional.mse_loss(model(content * 255.0) / 255.0, content)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            advance(f"pixel mse {float(loss.detach()):.4g}")


def _list_state(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _tuple_state(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _save_preview(batch: torch.Tensor, path: Path) -> None:
    image = (batch[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    Image.fromarray(image).save(path)
