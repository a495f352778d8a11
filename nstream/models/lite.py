"""``lite``: a style network built for real time on a laptop CPU.

The Johnson network spends most of its time on full- and half-resolution convolutions (a 9x9
conv on every input pixel, twice). ``lite`` convolves at full resolution only once, 11 channels
in and 3 out:

- stem: a 4x4 convolution with stride 4, which is exactly a space-to-depth (pixel-unshuffle)
  by 4 followed by a 1x1 convolution, so every layer but the last runs at 1/16 of the pixels;
- body: residual blocks of depthwise-separable convolutions (depthwise 3x3, then pointwise
  1x1), dilated so the receptive field (~150 px) stays comparable to Johnson's;
- head: a separable convolution down to a few feature channels, bilinear upsampling by 4, and
  one 3x3 convolution at full resolution over those features *and the input frame*. The
  input is the full-resolution guide: edges stay sharp although the network thinks at 1/4
  resolution. (A pixel-shuffle head was tried first: it is cheaper, but every sub-pixel of a
  4x4 block has its own output channel, and the style loss learned to paint a regular 4-pixel
  dot grid with them. Interpolation has no such grid; Odena et al. 2016, "Deconvolution and
  checkerboard artifacts".)

Instance normalization throughout, pixels in and out in 0..255 like ``johnson``. Any height and
width that are multiples of 4 (and at least ``min_size``) come back at the same size. The ONNX
graph uses Conv (grouped for depthwise), InstanceNormalization, Relu, Pad reflect, Add, Resize
(linear), Mul and Concat: ONNX Runtime and TensorRT both map them.
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
    """Space-to-depth stem, separable residual body at 1/4 resolution, input-guided bilinear head."""

    size_multiple = 4
    factor = 4
    dilations = (1, 2, 4, 2)
    # Reflection padding needs more pixels than the widest dilation at 1/4 resolution.
    min_size = factor * (max(dilations) + 1)

    def __init__(self, channels: int = 64, head_channels: int = 8) -> None:
        super().__init__()
        f = self.factor
        self.stem = nn.Conv2d(3, channels, f, stride=f)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.blocks = nn.Sequential(*(SeparableResidualBlock(channels, d) for d in self.dilations))
        self.head = SeparableConv(channels, head_channels)
        self.in_head = nn.InstanceNorm2d(head_channels, affine=True)
        self.out_pad = nn.ReflectionPad2d(1)
        self.out = nn.Conv2d(head_channels + 3, 3, 3)
        self.relu = nn.ReLU()
        self._init_out()

    @torch.no_grad()
    def _init_out(self) -> None:
        """Start as the identity on the guide (output = input) with small feature weights: training
        then only has to learn the style's departure from the frame, not to reproduce it."""
        self.out.weight.mul_(0.1)
        self.out.bias.zero_()
        guide = self.out.weight[:, -3:]
        guide.zero_()
        for colour in range(3):
            guide[colour, colour, 1, 1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.stem(x)))
        y = self.relu(self.in_head(self.head(self.blocks(y))))
        y = nn.functional.interpolate(y, scale_factor=self.factor, mode="bilinear", align_corners=False)
        # Work in 0..1 inside the last layer so its weights are O(1) whatever the pixel scale.
        return self.out(self.out_pad(torch.cat([y, x * (1.0 / 255.0)], dim=1))) * 255.0
