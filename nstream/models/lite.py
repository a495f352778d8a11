"""``lite``: a style network built for real time on a laptop CPU.

The Johnson network spends most of its time on full- and half-resolution convolutions (a 9x9
conv on every input pixel, twice). ``lite`` never convolves at full resolution:

- stem: a 4x4 convolution with stride 4, which is exactly a space-to-depth (pixel-unshuffle)
  by 4 followed by a 1x1 convolution, so every later layer runs at 1/16 of the pixels;
- body: residual blocks of depthwise-separable convolutions (depthwise 3x3, then pointwise
  1x1), dilated so the receptive field (~150 px) stays comparable to Johnson's;
- head: a separable convolution to 3x4x4 channels, then pixel shuffle (ONNX DepthToSpace) back
  to full resolution.

Instance normalization throughout, pixels in and out in 0..255 like ``johnson``. Any height and
width that are multiples of 4 (and at least ``min_size``) come back at the same size. The ONNX
graph uses Conv (grouped for depthwise), InstanceNormalization, Relu, Pad reflect, Add and
DepthToSpace: ONNX Runtime and TensorRT both map them.
"""

from __future__ import annotations

import torch
from torch import nn


class SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1: about 9x fewer multiply-adds than a dense 3x3."""

    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(dilation)
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, dilation=dilation, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pad(x)))


class SeparableResidualBlock(nn.Module):
    """Johnson's residual block with separable convolutions in place of the dense ones."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = SeparableConv(channels, channels, dilation)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = SeparableConv(channels, channels, dilation)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class LiteNet(nn.Module):
    """Space-to-depth stem, separable residual body at 1/4 resolution, pixel-shuffle head."""

    size_multiple = 4
    factor = 4
    dilations = (1, 2, 4, 2)
    # Reflection padding needs more pixels than the widest dilation at 1/4 resolution.
    min_size = factor * (max(dilations) + 1)

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        f = self.factor
        self.stem = nn.Conv2d(3, channels, f, stride=f)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.blocks = nn.Sequential(*(SeparableResidualBlock(channels, d) for d in self.dilations))
        self.head = SeparableConv(channels, 3 * f * f)
        self.shuffle = nn.PixelShuffle(f)
        self.relu = nn.ReLU()
        self._init_head()

    @torch.no_grad()
    def _init_head(self) -> None:
        """ICNR: every sub-pixel of a 4x4 block starts with the same weights, so the untrained
        output is a smooth nearest upsampling rather than a pattern of blocks."""
        f2 = self.factor * self.factor
        weight = self.head.pointwise.weight  # (3 * f2, C, 1, 1), channel = colour * f2 + sub-pixel
        weight.copy_(weight.view(3, f2, *weight.shape[1:])[:, :1].expand(3, f2, *weight.shape[1:]).reshape(weight.shape))
        bias = self.head.pointwise.bias
        bias.copy_(bias.view(3, f2)[:, :1].expand(3, f2).reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.stem(x)))
        y = self.blocks(y)
        return self.shuffle(self.head(y))
