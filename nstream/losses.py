"""The perceptual loss terms, defined once for training (``nstream train``) and the offline optimizer.

As in pystiche, the encoder, the loss terms and the loops are separate parts: a
:class:`PerceptualLoss` reads every layer it needs from one pass of a multi-layer encoder and
returns the unweighted content, Gram style and total-variation terms; the training loop and the
Gatys–Ruder optimizer weigh and report them their own way.

Content and style are *relative* errors: the content term divides by the energy of the content
features, each style layer by the energy of its target Gram matrix (itself normalized by C*H*W).
So a weight means the same at any image size, on every layer and with any loss network (ImageNet,
random or MobileNetV2 features differ in scale by orders of magnitude).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

EPS = 1e-12


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalized by C*H*W, so style weights mean the same at any image size."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


SMOOTHING = ("layer", "positions", "layer-t", "positions-t", "none")


def swag(features: torch.Tensor, over: str = "layer") -> torch.Tensor:
    """Activation smoothing (SWAG, Wang et al. CVPR 2021): a softmax over each image's layer response,
    ``over`` the whole layer (channels and positions) or each channel's positions, scaled by the
    count so the mean is 1; ``-t``: the response first divided by its standard deviation (a
    temperature, for networks whose activations reach tens). Networks other than VGG (here
    MobileNetV2) have a few huge, peaky activations that would own every Gram entry."""
    if over == "none":
        return features
    n, c = features.shape[:2]
    flat = features.reshape(n, -1) if over.startswith("layer") else features.reshape(n, c, -1)
    if over.endswith("-t"):
        flat = flat / flat.std(dim=-1, keepdim=True).clamp_min(1e-6)
    return (torch.softmax(flat, dim=-1) * flat.shape[-1]).reshape(features.shape)


def style_gram(features: torch.Tensor, smooth: str | None = None) -> torch.Tensor:
    """The Gram matrix a style term compares: of the SWAG-smoothed features where the encoder asks
    (``smooth``: how, see :func:`swag`)."""
    return gram_matrix(swag(features, smooth) if smooth else features)


def content_energy(target: torch.Tensor) -> torch.Tensor:
    """The mean squared content feature, the content term's denominator."""
    return target.pow(2).mean() + EPS


def style_energy(gram: torch.Tensor) -> torch.Tensor:
    """The squared norm of one image's target Gram matrix, the style term's denominator."""
    return gram.pow(2).sum() + EPS


def content_loss(features: torch.Tensor, target: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """Mean squared feature error relative to the target's energy."""
    return (features - target).pow(2).mean() / energy


def style_loss(gram: torch.Tensor, target: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """Squared Gram error relative to the target's energy, averaged over a batch (``target`` is 1xCxC)."""
    return (gram - target).pow(2).sum() / gram.shape[0] / energy


def total_variation(x: torch.Tensor, power: int = 2) -> torch.Tensor:
    """Mean difference of neighbouring pixels, squared (``power`` 2, the optimizer's: smooths the
    high-frequency noise the loss network ignores) or absolute (1, training's: keeps edges)."""
    dy, dx = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
    if power == 1:
        return dy.abs().mean() + dx.abs().mean()
    return (dy ** 2).mean() + (dx ** 2).mean()


def style_grams(encoder: nn.Module, images: Sequence[torch.Tensor], blend: Sequence[float],
                layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Gram targets per style layer, blended across style images by ``blend`` (which sums to 1)."""
    targets: dict[str, torch.Tensor] = {}
    smooth = getattr(encoder, "smooth_style", None)
    with torch.no_grad():
        for image, weight in zip(images, blend, strict=True):
            features = encoder(image)
            for layer in layers:
                gram = weight * style_gram(features[layer], smooth)
                targets[layer] = targets[layer] + gram if layer in targets else gram
    return targets


class PerceptualLoss(nn.Module):
    """Content, Gram style and total-variation terms of an image batch, through one encoder pass.

    Style targets are fixed with :meth:`set_style`; content targets either once with
    :meth:`set_content` (optimizing one image) or per call (training on changing batches).
    """

    def __init__(self, encoder: nn.Module, content_layers: Sequence[str], style_layers: Sequence[str],
                 tv_power: int = 2) -> None:
        super().__init__()
        self.encoder = encoder
        self.content_layers = list(content_layers)
        self.style_layers = list(style_layers)
        self.tv_power = tv_power
        self.content_targets: dict[str, torch.Tensor] = {}
        self.content_energy: dict[str, torch.Tensor] = {}
        self.style_targets: dict[str, torch.Tensor] = {}
        self.style_energy: dict[str, torch.Tensor] = {}

    def set_style(self, grams: Mapping[str, torch.Tensor]) -> None:
        """Fix the Gram targets (one per style layer, 1xCxC)."""
        self.style_targets = {layer: grams[layer].detach() for layer in self.style_layers}
        self.style_energy = {layer: style_energy(g) for layer, g in self.style_targets.items()}

    def content_features(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """The content layers' features of ``content``, without a graph."""
        with torch.no_grad():
            features = self.encoder(content)
        return {layer: features[layer].detach() for layer in self.content_layers}

    def set_content(self, content: torch.Tensor) -> None:
        """Fix the content targets for the images to come."""
        self.content_targets = self.content_features(content)
        self.content_energy = {layer: content_energy(f) for layer, f in self.content_targets.items()}

    def terms(self, x: torch.Tensor, content: torch.Tensor | None = None, tv: bool = True) -> dict[str, Any]:
        """Unweighted ``content``, ``style`` and (if ``tv``) ``tv`` terms of ``x``; ``content``: this
        batch's own content images, else the fixed targets."""
        targets, energies = self.content_targets, self.content_energy
        if content is not None:
            targets = self.content_features(content)
            energies = {layer: content_energy(f) for layer, f in targets.items()}
        features = self.encoder(x)
        content_term = sum(content_loss(features[layer], target, energies[layer])
                           for layer, target in targets.items()) / max(1, len(targets))
        smooth = getattr(self.encoder, "smooth_style", None)
        style_term = sum(style_loss(style_gram(features[layer], smooth), target, self.style_energy[layer])
                         for layer, target in self.style_targets.items()) / max(1, len(self.style_targets))
        terms = {"content": content_term, "style": style_term}
        if tv:
            terms["tv"] = total_variation(x, self.tv_power)
        return terms
