"""``lite`` as the exported graphs run it: the head's upsampling folded into its last convolution.

In :class:`~nstream.models.lite.LiteNet` the quarter-resolution features are upsampled bilinearly by
4 and then convolved (3x3, with the frame) to the 3 output channels at full resolution. Both steps
are linear in the features, so their composition is one convolution at quarter resolution to
3 x 4 x 4 channels, one per output colour and sub-pixel phase, followed by a depth-to-space. The
frame's part of the convolution stays a 3x3 convolution at full resolution. The result is the same
function (to float rounding, tested), not a pixel-shuffle head that learns a grid: the weights
are derived from the trained ones. ONNX Runtime runs it about 1.25x faster, because its
3-channel full-resolution convolution wastes most of its vector lanes (docs/BENCHMARKS.md, "The
lite head folded").

The borders come out exact too: bilinear upsampling clamps its source rows, which is what an edge
(replicate) pad of the features does, and reflecting the upsampled rows at the border gives the
same rows as the formula extended by one. A detail layer's convolution could be folded the same
way, but the depth-to-space of its 16 x 16 phase channels costs more than it saves (measured), so
lites with a detail layer export as they are.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nstream.models.lite import LiteNet


def bilinear_phases(factor: int) -> torch.Tensor:
    """``a[t + 1, j]``: the weight of quarter-resolution row ``i + j - 1`` in full-resolution row
    ``factor * i + t`` after bilinear upsampling (align_corners=False), for ``t`` in -1..factor."""
    weights = torch.zeros(factor + 2, 3, dtype=torch.float64)
    for t in range(-1, factor + 1):
        source = (t + 0.5) / factor - 0.5
        below = math.floor(source)
        fraction = source - below
        weights[t + 1, below + 1] += 1 - fraction
        weights[t + 1, below + 2] += fraction
    return weights


def fold_upsampling(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """The quarter-resolution 3x3 kernel equal to bilinear upsampling by ``factor`` then ``weight``
    (out x in x 3 x 3 at full resolution); output channels ordered for depth-to-space."""
    taps = bilinear_phases(factor)[torch.arange(factor)[:, None] + torch.arange(3)[None, :]]  # phase, tap, row
    folded = torch.einsum("ocyx,ryj,sxk->orscjk", weight.double(), taps, taps)
    return folded.reshape(weight.shape[0] * factor * factor, weight.shape[1], 3, 3).to(weight.dtype)


class FoldedLite(nn.Module):
    """The same function as ``net`` (a lite without a detail layer), with the folded head."""

    def __init__(self, net: LiteNet) -> None:
        super().__init__()
        if net.detail_channels:
            raise ValueError("a lite with a detail layer is exported unfolded")
        self.net = net
        features = net.head_channels
        weight = net.out.weight.detach()
        self.features_out = nn.Conv2d(features, 3 * net.factor ** 2, 3, bias=False)
        self.features_out.weight.data = fold_upsampling(weight[:, :features], net.factor)
        self.frame_out = nn.Conv2d(3, 3, 3)
        self.frame_out.weight.data = weight[:, features:] / 255.0  # the head reads the frame in 0..1
        self.frame_out.bias.data = net.out.bias.detach().clone()
        self.edge_pad = nn.ReplicationPad2d(1)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features_out(self.edge_pad(self.net.features(x, style)))
        painted = nn.functional.pixel_shuffle(features, self.net.factor)
        return (painted + self.frame_out(self.net.out_pad(x))) * 255.0


def for_graph(model: nn.Module) -> nn.Module:
    """What to export for ``model``: the folded head for a lite that has one, else the model itself."""
    if isinstance(model, LiteNet) and not model.detail_channels:
        return FoldedLite(model).eval()
    return model
