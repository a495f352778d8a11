"""Conditioned style networks: one Johnson-type network, many styles, the style an input.

Conditional instance normalization (Dumoulin et al. 2017, "A learned representation for artistic
style"): every normalization layer's scale and shift are a linear function of a style vector, so a
single network paints any style it was given a vector for, and vectors mix, blend and morph.

Two families share this module, with the layouts of their published weights:

- ``magenta``: Magenta's arbitrary image stylization transformer (Ghiasi et al. 2017), the
  small (alpha 0.25) network of the TF Hub TFLite release. Its style vector is 100 numbers that
  :class:`nstream.models.predictor.StylePredictor` computes from any painting; the contracting
  convolutions carry folded batch normalization (plain bias) instead of a style norm.
- ``tf26``: the 26-style network of TensorFlow's Android stylize demo. Its style vector is 26
  weights, one per learned style (a one-hot vector for one style, any mix of them for a blend).

``compact``: the ``magenta`` layout for one style, its norms plain per-channel scales and shifts
(:func:`fold_style` turns the arbitrary network and one painting's vector into it exactly), a
one-style network like ``johnson`` and ``lite`` that ``nstream distill`` trains as a student.

Pixels in and out are NCHW floats in 0..255 like every network here; any height and width that are
multiples of 4 come back at the same size (the published export is fixed at 384x384; this one is
not). The ONNX graph uses Conv, InstanceNormalization, Gemm/MatMul, Unsqueeze, Mul, Add, Relu,
Resize (nearest), Pad (reflect) and Sigmoid: ONNX Runtime and TensorRT map them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EPSILON = 1e-5  # both published graphs add 1e-5 to the variance


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose per-channel scale and shift come from the style vector."""

    def __init__(self, channels: int, style_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.gamma = nn.Linear(style_dim, channels, bias=bias)
        self.beta = nn.Linear(style_dim, channels, bias=bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale = self.gamma(style).unsqueeze(-1).unsqueeze(-1)
        shift = self.beta(style).unsqueeze(-1).unsqueeze(-1)
        return F.instance_norm(x, eps=EPSILON) * scale + shift


class FixedInstanceNorm(nn.Module):
    """One style's scale and shift: a conditional norm with its style folded in, or learned as such."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=EPSILON)


class ReflectConv(nn.Module):
    """Reflection padding of half the kernel, then a 'valid' convolution (TensorFlow's MirrorPad + conv)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class NormedConv(nn.Module):
    """Convolution, then the style norm (or, where the published network folded a batch norm, a bias)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int | None, stride: int = 1,
                 conditioned: bool = True, style_bias: bool = True) -> None:
        super().__init__()
        self.conv = ReflectConv(in_ch, out_ch, kernel, stride, bias=not conditioned)
        self.norm: nn.Module | None = None
        if conditioned:
            self.norm = FixedInstanceNorm(out_ch) if style_dim is None else ConditionalInstanceNorm(
                out_ch, style_dim, style_bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        y = self.conv(x)
        return y if self.norm is None else self.norm(y, style)


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm, added to the input (no activation after the sum)."""

    def __init__(self, channels: int, style_dim: int | None, style_bias: bool) -> None:
        super().__init__()
        self.conv1 = NormedConv(channels, channels, 3, style_dim, style_bias=style_bias)
        self.conv2 = NormedConv(channels, channels, 3, style_dim, style_bias=style_bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x, style)), style)


@dataclass(frozen=True)
class Layout:
    """The shape of a published conditioned network."""

    style_dim: int
    contract: tuple[int, int, int]  # channels after the 9x9 stride-1 conv and the two stride-2 convs
    expand: tuple[int, int]  # channels after the two nearest-upsample convs
    blocks: int
    contract_conditioned: bool  # style norm in the contracting convs (tf26) or a folded batch norm (magenta)
    style_bias: bool  # the style-to-norm maps have a bias (magenta's 1x1 convs) or not (tf26's weight tables)
    references: int  # style vectors kept with the weights for engine checks and int8 calibration


LAYOUTS = {
    "magenta": Layout(style_dim=100, contract=(8, 16, 32), expand=(16, 8), blocks=5,
                      contract_conditioned=False, style_bias=True, references=5),
    "tf26": Layout(style_dim=26, contract=(32, 32, 32), expand=(8, 4), blocks=6,
                   contract_conditioned=True, style_bias=False, references=26),
}


class ConditionedStyleNet(nn.Module):
    """``net(pixels, style) -> pixels``: contract (9x9, two stride-2 3x3), residual blocks, expand
    (two nearest 2x upsamples with 3x3 convs, a 9x9 conv), sigmoid. ``one_style``: the same layers
    with fixed norms and no style input (``net(pixels) -> pixels``; see :func:`fold_style`)."""

    size_multiple = 4
    min_size = 16  # reflection padding of 1 at quarter resolution needs 2+ pixels there; 4 at full

    def __init__(self, family: str, one_style: bool = False) -> None:
        super().__init__()
        layout = LAYOUTS[family]
        self.family = family
        self.style_dim = None if one_style else layout.style_dim
        # int8: the convolutions up to the first style norm see un-normalized activations with a wide range;
        # they stay fp32 (magenta: the 3 contracting convs and the first residual conv; 22 -> 36 dB held out)
        self.int8_keep_head = 2 if layout.contract_conditioned else len(layout.contract) + 1
        d, c1, c2, c3 = self.style_dim, *layout.contract
        cond, sb = layout.contract_conditioned, layout.style_bias
        self.contract = nn.ModuleList([
            NormedConv(3, c1, 9, d, 1, cond, sb),
            NormedConv(c1, c2, 3, d, 2, cond, sb),
            NormedConv(c2, c3, 3, d, 2, cond, sb),
        ])
        self.residual = nn.ModuleList([ResidualBlock(c3, d, sb) for _ in range(layout.blocks)])
        # Engines are checked against PyTorch, and int8 graphs calibrated, over these styles (tf26: all 26;
        # magenta: the bundled paintings' vectors, filled in by the converter): real styles, not noise.
        if d is not None:
            references = torch.eye(d) if layout.references == d else torch.zeros(layout.references, d)
            self.register_buffer("reference_styles", references)
        e1, e2 = layout.expand
        self.expand = nn.ModuleList([
            NormedConv(c3, e1, 3, d, style_bias=sb),
            NormedConv(e1, e2, 3, d, style_bias=sb),
            NormedConv(e2, 3, 9, d, style_bias=sb),
        ])

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: N x 3 x H x W pixels in 0..255; ``style``: N x D style vectors of the same dtype (none
        for a one-style network)."""
        h = x * (1.0 / 255.0)
        for layer in self.contract:
            h = torch.relu(layer(h, style))
        for block in self.residual:
            h = block(h, style)
        for layer in self.expand[:2]:
            h = torch.relu(layer(F.interpolate(h, scale_factor=2.0, mode="nearest"), style))
        return torch.sigmoid(self.expand[2](h, style)) * 255.0


def magenta_transformer() -> ConditionedStyleNet:
    return ConditionedStyleNet("magenta")


def tf26_network() -> ConditionedStyleNet:
    return ConditionedStyleNet("tf26")


def compact_network() -> ConditionedStyleNet:
    """The ``magenta`` layout for one style (8/16/32 channels, 0.1 M parameters): a student architecture."""
    return ConditionedStyleNet("magenta", one_style=True)


@torch.no_grad()
def fold_style(net: ConditionedStyleNet, vector: torch.Tensor) -> ConditionedStyleNet:
    """The one-style network that paints exactly as ``net`` does with ``vector`` (D numbers): every
    conditional norm's scale and shift computed once and kept as plain parameters."""
    if net.style_dim is None:
        raise ValueError("the network already paints one style")
    folded = ConditionedStyleNet(net.family, one_style=True)
    convolutions = {k: v for k, v in net.state_dict().items() if k in folded.state_dict()}
    folded.load_state_dict(convolutions, strict=False)
    norms = dict(folded.named_modules())
    style = vector.reshape(1, -1).to(net.reference_styles.dtype)
    for name, module in net.named_modules():
        if isinstance(module, ConditionalInstanceNorm):
            norms[name].weight.copy_(module.gamma(style)[0])
            norms[name].bias.copy_(module.beta(style)[0])
    return folded
