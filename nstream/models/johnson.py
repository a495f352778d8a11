"""The Johnson et al. (2016) image transformation network.

Layer names follow pytorch/examples ``fast_neural_style`` so that its checkpoints load
without renaming. Pixels go in and come out in the 0..255 range, as there.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvLayer(nn.Module):
    """Reflection-padded convolution: no zero border, so frame edges do not darken."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest upsampling then a convolution: avoids the checkerboard of transposed convs."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, upsample: int = 2) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv2d(self.pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    """32/64/128 channels, two stride-2 downsamples, five residual blocks, two upsamples.

    Spatial sizes must be multiples of 4 for the output to match the input; the stylizer
    pads and crops so callers never see that constraint.
    """

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvLayer(3, 32, 9)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, 3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, 3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, 3)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, 3)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9)
        self.relu = nn.ReLU()
        self._upsamplers()

    def _upsamplers(self) -> None:
        """Hook for variants that upsample differently (see ``TransformerNetDeconv``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


class DeconvLayer(nn.Module):
    """A stride-2 transposed convolution, as in Johnson's original Torch code (and its checkerboard)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3) -> None:
        super().__init__()
        padding = (kernel - 1) // 2
        # Output padding that makes the output exactly twice the input for odd and even kernels.
        self.conv_transpose = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride=2, padding=padding,
                                                 output_padding=2 - kernel + 2 * padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_transpose(x)


class TransformerNetDeconv(TransformerNet):
    """The paper's variant: transposed convolutions instead of nearest upsampling + conv.

    Same layer names as ``TransformerNet`` except ``deconv1``/``deconv2``, which hold a
    ``conv_transpose`` (weights shaped in x out x k x k), so checkpoints of ports of the original
    load once their keys are normalised (see ``checkpoints.normalise_keys``).
    """

    def __init__(self, kernel: int = 3) -> None:
        self.kernel = kernel
        super().__init__()

    def _upsamplers(self) -> None:
        self.deconv1 = DeconvLayer(128, 64, self.kernel)
        self.deconv2 = DeconvLayer(64, 32, self.kernel)
