"""The loss terms of Gatys et al. (2015) and Ruder et al. (2016), on images in [0, 1].

Content and style terms are *relative* errors: the content term divides by the energy of the
content features, each style layer by the energy of its target Gram matrix (itself normalized
by C*H*W in :func:`nstream.lossnet.gram_matrix`). So a weight means the same at any image size,
on every layer and with either loss network (ImageNet or the random VGG, whose feature scales
differ by orders of magnitude). The temporal term is Ruder's: a per-pixel weighted squared
distance to earlier results warped into this frame, averaged over the D = C*H*W values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nstream.lossnet import MultiLayerEncoder, gram_matrix

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
EPS = 1e-12


@dataclass(frozen=True)
class LossWeights:
    """How much each term counts; content 1 is the reference."""

    content: float = 1.0
    style: float = 10.0
    tv: float = 1.0
    temporal: float = 50.0


@dataclass
class TemporalTarget:
    """An earlier result warped into this frame, and Ruder's per-pixel weight for it (1x1xHxW)."""

    image: torch.Tensor
    weight: torch.Tensor


def style_grams(encoder: MultiLayerEncoder, images: Sequence[torch.Tensor], blend: Sequence[float],
                layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Gram targets per style layer, blended across style images by ``blend`` (which sums to 1)."""
    targets: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for image, weight in zip(images, blend, strict=True):
            features = encoder(image)
            for layer in layers:
                gram = weight * gram_matrix(features[layer])
                targets[layer] = targets[layer] + gram if layer in targets else gram
    return targets


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: smooths the high-frequency noise VGG ignores."""
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean()


def temporal_loss(x: torch.Tensor, targets: Sequence[TemporalTarget]) -> torch.Tensor:
    """Ruder's eq. 7/8: sum over earlier frames of (1/D) sum c * (x - warped)^2."""
    total = x.new_zeros(())
    for target in targets:
        total = total + (target.weight * (x - target.image) ** 2).sum() / x.numel()
    return total


def long_term_weights(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder's long-term weights, closest frame first: a pixel counts for frame t-j only where no
    closer frame already covers it, c_long(t-j) = max(c(t-j) - sum of c(t-k) for closer k, 0)."""
    out, covered = [], None
    for mask in masks:
        out.append(mask.astype(np.float32) if covered is None else np.maximum(mask - covered, 0.0).astype(np.float32))
        covered = mask.astype(np.float32) if covered is None else covered + mask
    return out


class GatysLoss(nn.Module):
    """``loss(x) -> (total, terms)`` for an image x (1x3xHxW, [0, 1]) against the set targets.

    Targets are fixed before optimizing (:meth:`set_targets`); nothing here computes flow or
    reads files, so the closure an optimizer calls stays pure tensor work.
    """

    def __init__(self, encoder: MultiLayerEncoder, content_layers: Sequence[str], style_layers: Sequence[str],
                 weights: LossWeights) -> None:
        super().__init__()
        self.encoder = encoder
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.weights = weights
        self.content_targets: dict[str, torch.Tensor] = {}
        self.content_energy: dict[str, torch.Tensor] = {}
        self.style_targets: dict[str, torch.Tensor] = {}
        self.style_energy: dict[str, torch.Tensor] = {}
        self.temporal: list[TemporalTarget] = []

    def set_targets(self, content: torch.Tensor, grams: dict[str, torch.Tensor],
                    temporal: Sequence[TemporalTarget] = ()) -> None:
        """Fix what the image is pulled towards: content features, Gram targets, warped earlier frames."""
        with torch.no_grad():
            features = self.encoder(content)
        self.content_targets = {layer: features[layer].detach() for layer in self.content_layers}
        self.content_energy = {layer: f.pow(2).mean() + EPS for layer, f in self.content_targets.items()}
        self.style_targets = {layer: grams[layer].detach() for layer in self.style_layers}
        self.style_energy = {layer: g.pow(2).sum() + EPS for layer, g in self.style_targets.items()}
        self.temporal = list(temporal)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        features = self.encoder(x)
        content = sum((features[layer] - target).pow(2).mean() / self.content_energy[layer]
                      for layer, target in self.content_targets.items()) / max(1, len(self.content_targets))
        style = sum((gram_matrix(features[layer]) - target).pow(2).sum() / self.style_energy[layer]
                    for layer, target in self.style_targets.items()) / max(1, len(self.style_targets))
        w = self.weights
        total = w.content * content + w.style * style
        terms = {"content": float(content.detach()), "style": float(style.detach())}
        if w.tv:
            tv = tv_loss(x)
            total = total + w.tv * tv
            terms["tv"] = float(tv.detach())
        if self.temporal and w.temporal:
            temporal = temporal_loss(x, self.temporal)
            total = total + w.temporal * temporal
            terms["temporal"] = float(temporal.detach())
        terms["total"] = float(total.detach())
        return total, terms
