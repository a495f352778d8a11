"""Stylize one image or frame: targets, start image, coarse-to-fine scales.

Images travel as HxWx3 uint8 RGB arrays (what is stored on disk) or float32 [0, 1] arrays (a
warped start image); tensors exist only inside. Coarse-to-fine (``scales`` > 1) optimizes at
half, quarter, ... size first and upsamples each result as the next start: large outputs reach
the style's large structures in far fewer full-size iterations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from nstream.errors import NStreamError
from nstream.losses import style_grams
from nstream.lossnet import MultiLayerEncoder
from nstream.optimize.loop import OptimizeResult, StepFn, optimize
from nstream.optimize.losses import GatysLoss, LossWeights, TemporalTarget

INITS = ("content", "random", "stylized", "prev-warped")


def fresh_start(init: str) -> str:
    """The start of an image with no earlier result to warp (a still, a video's first frame): ``init``
    itself, or the content for ``prev-warped``."""
    return init if init in ("random", "stylized") else "content"
MIN_SCALE_SIDE = 16


@dataclass
class TransferSettings:
    """Everything that decides how one frame is optimized."""

    content_layers: Sequence[str]
    style_layers: Sequence[str]
    weights: LossWeights = field(default_factory=LossWeights)
    optimizer: str = "lbfgs"
    lr: float | None = None
    tolerance: float = 0.0
    scales: int = 1
    style_scale: float = 1.0
    seed: int = 0


@dataclass
class Temporal:
    """An earlier result warped into this frame (float32 HxWx3 in [0, 1]) and its per-pixel weight (HxW)."""

    image: np.ndarray
    weight: np.ndarray


def to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """HxWx3 uint8 or float [0, 1] array -> 1x3xHxW float tensor in [0, 1]."""
    array = np.ascontiguousarray(image)
    x = torch.from_numpy(array if array.flags.writeable else array.copy()).to(device)
    x = x.float() / 255.0 if image.dtype == np.uint8 else x.float()
    return x.permute(2, 0, 1).unsqueeze(0)


def to_image(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW tensor in [0, 1] -> HxWx3 uint8."""
    return (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average down, cubic up: the least aliasing either way."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def fit_size(width: int, height: int, max_side: int | None, even: bool = False) -> tuple[int, int]:
    """(width, height) with the longer side at most ``max_side``, aspect kept; never upscales.

    ``even`` rounds a scaled size to even numbers, so video encoders can use 4:2:0 chroma.
    """
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    if even:
        return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_sizes(width: int, height: int, scales: int) -> list[tuple[int, int]]:
    """Coarse-to-fine sizes, halving per scale, ending at (width, height); too-small scales are dropped."""
    sizes = []
    for level in range(scales - 1, -1, -1):
        w, h = round(width / 2 ** level), round(height / 2 ** level)
        if min(w, h) >= MIN_SCALE_SIDE or level == 0:
            sizes.append((w, h))
    return sizes


class Transfer:
    """Holds the loss network and the style images; ``stylize`` optimizes one frame."""

    def __init__(self, encoder: MultiLayerEncoder, styles: Sequence[np.ndarray], blend: Sequence[float],
                 settings: TransferSettings, device: torch.device,
                 feed_forward: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """``feed_forward``: image -> a fast stylization of it with the same style, the ``stylized`` start."""
        if len(styles) != len(blend):
            raise NStreamError(f"{len(styles)} style images but {len(blend)} blend weights: give one weight per style")
        if any(w < 0 for w in blend) or sum(blend) <= 0:
            raise NStreamError(f"style blend weights must be >= 0 and not all 0, got {', '.join(map(str, blend))}")
        self.encoder = encoder.to(device)
        self.styles = list(styles)
        self.blend = [w / sum(blend) for w in blend]
        self.settings = settings
        self.device = device
        self.loss = GatysLoss(self.encoder, settings.content_layers, settings.style_layers, settings.weights)
        self._grams: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.feed_forward = feed_forward

    def grams(self, width: int, height: int) -> dict[str, torch.Tensor]:
        """Gram targets for a (width, height) output: each style image resized to style_scale * its longer side."""
        key = (width, height)
        if key not in self._grams:
            side = max(MIN_SCALE_SIDE, round(self.settings.style_scale * max(width, height)))
            images = []
            for style in self.styles:
                w, h = style.shape[1], style.shape[0]
                s = side / max(w, h)
                images.append(to_tensor(resize(style, max(1, round(w * s)), max(1, round(h * s))), self.device))
            self._grams[key] = style_grams(self.encoder, images, self.blend, self.settings.style_layers)
        return self._grams[key]

    def start_image(self, content: np.ndarray, init: str) -> np.ndarray:
        """A start image for ``content`` by name: the content itself, seeded noise, or the feed-forward
        network's stylization (float32 [0, 1])."""
        if init == "stylized":
            if self.feed_forward is None:
                raise NStreamError("the stylized start needs a feed-forward stylizer: build the Transfer with one")
            return self.feed_forward(content).astype(np.float32) / 255.0
        if init == "random":
            noise = torch.rand(content.shape, generator=self.generator, dtype=torch.float32)
            return (0.5 + 0.5 * (noise.numpy() - 0.5)).astype(np.float32)  # mid-grey noise, as from a blank canvas
        return content.astype(np.float32) / 255.0

    def stylize(self, content: np.ndarray, start: np.ndarray, iterations: int, temporal: Sequence[Temporal] = (),
                extra_style: np.ndarray | None = None, on_step: StepFn | None = None,
                on_scale: object = None) -> tuple[np.ndarray, OptimizeResult]:
        """Optimize one frame (uint8 ``content``) from ``start`` (float [0, 1]); returns (uint8 result, last scale's run).

        ``extra_style`` (style from the previous frame) counts as much as all style images together.
        """
        height, width = content.shape[:2]
        image = start.astype(np.float32)
        result = None
        sizes = scale_sizes(width, height, self.settings.scales)
        for index, (w, h) in enumerate(sizes):
            grams = self.grams(w, h)
            if extra_style is not None:
                extra = style_grams(self.encoder, [to_tensor(resize(extra_style, w, h), self.device)], [1.0],
                                    self.settings.style_layers)
                grams = {layer: 0.5 * g + 0.5 * extra[layer] for layer, g in grams.items()}
            targets = [TemporalTarget(to_tensor(resize(t.image, w, h), self.device),
                                      torch.from_numpy(resize(t.weight.astype(np.float32), w, h)).to(self.device)[None, None])
                       for t in temporal]
            self.loss.set_targets(to_tensor(resize(content, w, h), self.device), grams, targets)
            x0 = to_tensor(resize(image, w, h), self.device)
            if callable(on_scale):
                on_scale(index, len(sizes), iterations)
            result = optimize(x0, self.loss, iterations, self.settings.optimizer, self.settings.lr,
                              self.settings.tolerance, on_step)
            image = result.image[0].permute(1, 2, 0).cpu().numpy()
            if index + 1 < len(sizes):
                image = np.clip(resize(image, *sizes[index + 1]), 0.0, 1.0)
        assert result is not None
        return to_image(result.image), result
