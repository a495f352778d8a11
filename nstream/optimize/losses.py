"""The Gatys et al. (2015) and Ruder et al. (2016) objective for the offline optimizer, on images in [0, 1].

Content, Gram style and total variation come from :mod:`nstream.losses` (shared with training);
here is what only the optimizer needs: its weights, the style targets of several blended
paintings and Ruder's temporal term, a per-pixel weighted squared distance to earlier results
warped into this frame, averaged over the D = C*H*W values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nstream.losses import PerceptualLoss

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def default_layers(loss_net: str) -> tuple[list[str], list[str]]:
    """(content layers, style layers) of the optimizer for a ``--loss-net``: VGG19's, or MobileNetV2's."""
    from nstream.lossnet import MAGENTA_CONTENT_LAYERS, MAGENTA_STYLE_LAYERS

    if loss_net == "magenta":
        return list(MAGENTA_CONTENT_LAYERS), list(MAGENTA_STYLE_LAYERS)
    return list(DEFAULT_CONTENT_LAYERS), list(DEFAULT_STYLE_LAYERS)


@dataclass(frozen=True)
class LossWeights:
    """How much each term counts; content 1 is the reference."""

    content: float = 1.0
    style: float = 10.0
    tv: float = 1.0
    temporal: float = 50.0


# MobileNetV2's style terms pull less per unit than VGG19's: its weights are 10x the VGG19s', the
# temporal one too, so the balance of style and steadiness stays (docs/BENCHMARKS.md).
MAGENTA_WEIGHTS = LossWeights(content=1.0, style=100.0, tv=1.0, temporal=500.0)


def default_weights(loss_net: str) -> LossWeights:
    """The optimizer's loss weights for a ``--loss-net`` (content 1 is the reference)."""
    return MAGENTA_WEIGHTS if loss_net == "magenta" else LossWeights()


@dataclass
class TemporalTarget:
    """An earlier result warped into this frame, and Ruder's per-pixel weight for it (1x1xHxW)."""

    image: torch.Tensor
    weight: torch.Tensor


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


class GatysLoss(PerceptualLoss):
    """``loss(x) -> (total, terms)`` for an image x (1x3xHxW, [0, 1]) against the set targets.

    Targets are fixed before optimizing (:meth:`set_targets`); nothing here computes flow or
    reads files, so the closure an optimizer calls stays pure tensor work.
    """

    def __init__(self, encoder: torch.nn.Module, content_layers: Sequence[str], style_layers: Sequence[str],
                 weights: LossWeights) -> None:
        super().__init__(encoder, content_layers, style_layers, tv_power=2)
        self.weights = weights
        self.temporal: list[TemporalTarget] = []

    def set_targets(self, content: torch.Tensor, grams: dict[str, torch.Tensor],
                    temporal: Sequence[TemporalTarget] = ()) -> None:
        """Fix what the image is pulled towards: content features, Gram targets, warped earlier frames."""
        self.set_content(content)
        self.set_style(grams)
        self.temporal = list(temporal)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        parts = self.terms(x, tv=bool(w.tv))
        content, style = parts["content"], parts["style"]
        total = w.content * content + w.style * style
        terms = {"content": float(content.detach()), "style": float(style.detach())}
        if w.tv:
            total = total + w.tv * parts["tv"]
            terms["tv"] = float(parts["tv"].detach())
        if self.temporal and w.temporal:
            temporal = temporal_loss(x, self.temporal)
            total = total + w.temporal * temporal
            terms["temporal"] = float(temporal.detach())
        terms["total"] = float(total.detach())
        return total, terms
