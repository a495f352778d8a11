"""Magenta's style predictor: any painting in, the 100-number style vector of the arbitrary network out.

A MobileNetV2 (Sandler et al. 2018, width 1.0, trained from ImageNet, batch norms folded into the
convolutions) up to its 1280-channel head, a global average, and a 1x1 "bottleneck" to 100 numbers
(Ghiasi et al. 2017, the TF Hub TFLite release). Convolutions pad like TensorFlow's ``SAME``:
a stride-2 layer on an even size pads one pixel at the bottom and right only.

The painting is centre-cropped to a square and resized to 256x256 (``style_spec.predictor_input``),
as the published model is fed; pixels are NCHW floats in 0..255 like every network here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

STYLE_DIM = 100
# MobileNetV2's inverted residual stages: (expansion, output channels, repeats, first stride)
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def same_padding(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad as TensorFlow's ``SAME`` does: the odd pixel of padding goes to the bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(int(size) / stride) - 1) * stride + kernel - int(size), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SameConv(nn.Module):
    """A convolution with TensorFlow ``SAME`` padding and an optional ReLU6."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 relu6: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu6 = kernel, stride, relu6
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(same_padding(x, self.kernel, self.stride) if self.kernel > 1 else x)
        return y.clamp(0.0, 6.0) if self.relu6 else y


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection; a skip where shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.expand = SameConv(in_ch, hidden) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv(hidden, out_ch, relu6=False)
        self.skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        return x + h if self.skip else h


class StylePredictor(nn.Module):
    """``predictor(pixels) -> (N, 100)`` style vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv(3, 32, 3, 2)
        blocks, channels = [], 32
        for expansion, out_ch, repeats, stride in STAGES:
            for i in range(repeats):
                blocks.append(InvertedResidual(channels, out_ch, expansion, stride if i == 0 else 1))
                channels = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = SameConv(channels, 1280)
        self.bottleneck = nn.Conv2d(1280, STYLE_DIM, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(self.blocks(self.stem(x / 255.0)))
        return self.bottleneck(h.mean(dim=(2, 3), keepdim=True)).flatten(1)
