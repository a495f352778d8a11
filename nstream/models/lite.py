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

With ``detail_channels`` the head gets one more full-resolution layer: a 3x3 convolution from the
upsampled features and the frame to that many channels and a ReLU, before the last one. The
plain head has no non-linearity at full resolution, so its strokes are the quarter-resolution
features interpolated and sharpened only where the frame has edges; the teacher's brush texture is
finer than that (docs/BENCHMARKS.md, "A full-resolution detail layer").

Instance normalization throughout, pixels in and out in 0..255 like ``johnson``. Any height and
width that are multiples of 4 (and at least ``min_size``) come back at the same size. The ONNX
graph uses Conv (grouped for depthwise), InstanceNormalization, Relu, Pad reflect, Add, Resize
(linear), Mul and Concat: ONNX Runtime and TensorRT both map them.

With ``style_dim`` the same network is conditioned (Dumoulin et al. 2017): every instance
normalization takes its scale and shift from a style vector (:class:`ConditionalInstanceNorm`), so
one ``lite`` paints any style it is given a vector for: distilled from Magenta's arbitrary-style
network on its 100-number vectors, any painting at ``lite`` speed (``nstream distill --styles``).
"""

from __future__ import annotations

import torch
from torch import nn

from nstream.models.conditioned import ConditionalInstanceNorm


def instance_norm(channels: int, style_dim: int | None) -> nn.Module:
    """A learned instance normalization, or with ``style_dim`` one whose scale and shift a style vector sets."""
    return nn.InstanceNorm2d(channels, affine=True) if style_dim is None else ConditionalInstanceNorm(channels, style_dim)


def normalize(norm: nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
    return norm(x) if style is None else norm(x, style)


REFERENCE_STYLES = 5


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

    def __init__(self, channels: int, dilation: int, style_dim: int | None = None) -> None:
        super().__init__()
        self.conv1 = SeparableConv(channels, channels, dilation)
        self.in1 = instance_norm(channels, style_dim)
        self.conv2 = SeparableConv(channels, channels, dilation)
        self.in2 = instance_norm(channels, style_dim)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        y = self.relu(normalize(self.in1, self.conv1(x), style))
        return x + normalize(self.in2, self.conv2(y), style)


class LiteNet(nn.Module):
    """Space-to-depth stem, separable residual body at 1/4 resolution, input-guided bilinear head."""

    size_multiple = 4
    factor = 4
    dilations = (1, 2, 4, 2)
    # Reflection padding needs more pixels than the widest dilation at 1/4 resolution.
    min_size = factor * (max(dilations) + 1)

    def __init__(self, channels: int = 64, head_channels: int = 8, style_dim: int | None = None,
                 detail_channels: int = 0) -> None:
        super().__init__()
        f = self.factor
        self.style_dim = style_dim  # None: one style; else net(pixels, style_vector), any style
        self.head_channels, self.detail_channels = head_channels, detail_channels
        self.stem = nn.Conv2d(3, channels, f, stride=f)
        self.in1 = instance_norm(channels, style_dim)
        self.blocks = nn.Sequential(*(SeparableResidualBlock(channels, d, style_dim) for d in self.dilations))
        self.head = SeparableConv(channels, head_channels)
        self.in_head = instance_norm(head_channels, style_dim)
        self.out_pad = nn.ReflectionPad2d(1)
        if detail_channels:
            self.detail = nn.Conv2d(head_channels + 3, detail_channels, 3)
        self.out = nn.Conv2d((detail_channels or head_channels) + 3, 3, 3)
        self.relu = nn.ReLU()
        self._init_out()
        if style_dim is not None:
            self._init_style_norms()
            # Engines are checked against PyTorch, and int8 graphs calibrated, over these real styles
            # (distill fills in vectors of its training styles), as for the other conditioned networks.
            self.register_buffer("reference_styles", torch.zeros(REFERENCE_STYLES, style_dim))

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

    @torch.no_grad()
    def _init_style_norms(self) -> None:
        """Every style starts as plain instance normalization (scale 1, shift 0): what the vector
        changes is learned from there, not from random scales."""
        for norm in self.modules():
            if isinstance(norm, ConditionalInstanceNorm):
                norm.gamma.weight.zero_()
                norm.gamma.bias.fill_(1.0)
                norm.beta.weight.zero_()
                norm.beta.bias.zero_()

    def features(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Everything at 1/4 resolution: the head's ``head_channels`` feature maps."""
        y = self.relu(normalize(self.in1, self.stem(x), style))
        for block in self.blocks:
            y = block(y, style)
        return self.relu(normalize(self.in_head, self.head(y), style))

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        y = nn.functional.interpolate(self.features(x, style), scale_factor=self.factor, mode="bilinear",
                                      align_corners=False)
        # Work in 0..1 at full resolution so the weights are O(1) whatever the pixel scale.
        guide = x * (1.0 / 255.0)
        y = torch.cat([y, guide], dim=1)
        if self.detail_channels:
            y = torch.cat([self.relu(self.detail(self.out_pad(y))), guide], dim=1)
        return self.out(self.out_pad(y)) * 255.0


@torch.no_grad()
def conditioned_from(plain: LiteNet, style_dim: int) -> LiteNet:
    """A conditioned lite that paints ``plain``'s one style from any vector to begin with: the same
    convolutions, each normalization's learned scale and shift as its style-independent part."""
    conditioned = LiteNet(channels=plain.stem.out_channels, head_channels=plain.head_channels, style_dim=style_dim,
                          detail_channels=plain.detail_channels)
    state = conditioned.state_dict()
    for name, value in plain.state_dict().items():
        if name in state:
            state[name] = value
        else:  # an instance norm's affine: weight -> gamma's bias, bias -> beta's bias
            norm, kind = name.rsplit(".", 1)
            state[f"{norm}.{'gamma' if kind == 'weight' else 'beta'}.bias"] = value
    conditioned.load_state_dict(state)
    return conditioned


@torch.no_grad()
def with_detail(plain: LiteNet, detail_channels: int) -> LiteNet:
    """``plain`` with a full-resolution detail layer that starts as a pass-through, so the new network
    paints exactly what ``plain`` does until training changes it: the detail convolution copies its
    inputs (the upsampled features and the frame, all non-negative, so the ReLU keeps them) into its
    first channels, and the last convolution reads them with ``plain``'s weights."""
    inputs = plain.head_channels + 3
    if plain.style_dim is not None or plain.detail_channels:
        raise ValueError("with_detail takes a one-style lite without a detail layer")
    if detail_channels < inputs:
        raise ValueError(f"a detail layer passing {inputs} channels through needs at least {inputs}")
    detailed = LiteNet(channels=plain.stem.out_channels, head_channels=plain.head_channels,
                       detail_channels=detail_channels)
    state = {name: value for name, value in plain.state_dict().items() if not name.startswith("out.")}
    detailed.load_state_dict(state, strict=False)
    detailed.detail.weight[:inputs].zero_()
    detailed.detail.bias[:inputs].zero_()
    for channel in range(inputs):
        detailed.detail.weight[channel, channel, 1, 1] = 1.0
    detailed.out.weight.zero_()
    detailed.out.weight[:, :inputs] = plain.out.weight
    detailed.out.bias.copy_(plain.out.bias)
    return detailed
