"""Loss networks: ImageNet VGG the standard way, a seeded random VGG, or Magenta's MobileNetV2.

Training, the offline optimizer and ``eval`` read features through :class:`MultiLayerEncoder`,
which runs the network once and only as deep as the deepest layer asked for; :func:`build_encoder`
makes one for any ``--loss-net``:

- ``imagenet``: torchvision's VGG weights (a download no machine here can make);
- ``random``: a seeded, Kaiming-initialized VGG with average pooling: random deep features still
  carry texture statistics, so Gram-matrix style losses on them transfer style recognisably;
- ``magenta``: the MobileNetV2 inside Magenta's style predictor (trained from ImageNet, then to
  describe paintings; Apache-2.0, shipped), its inverted-residual blocks named ``block1`` ..
  ``block17`` after the stem (``stem``). SWAG activation smoothing (Wang et al. CVPR 2021,
  :func:`nstream.losses.swag`) is built in and measured, and off by default (``MAGENTA_SMOOTHING``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from nstream.errors import NStreamError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSS_NETS = ("imagenet", "random", "magenta")
VGG_NETS = ("imagenet", "random")
# Magenta's MobileNetV2: content at 1/16 of the size, style from the stem (1/2) to 1/16; measured against
# shallower and deeper choices (docs/BENCHMARKS.md, "Offline with a loss network that knows images").
MAGENTA_CONTENT_LAYERS = ("block10",)
MAGENTA_STYLE_LAYERS = ("stem", "block1", "block3", "block6", "block10", "block13")
# SWAG smoothing (nstream.losses.swag) of the style features: measured off. MobileNetV2's activations reach
# tens, so a softmax over them saturates and the style gradients vanish; with a temperature it keeps the
# photo and loses the painting (docs/BENCHMARKS.md). None: plain Gram matrices.
MAGENTA_SMOOTHING: str | None = None


def _layer_names(features: nn.Sequential) -> list[str]:
    """Name torchvision's VGG ``features`` children conv1_1, relu1_1, ..., pool1, ..."""
    names, block, index = [], 1, 1
    for module in features:
        if isinstance(module, nn.Conv2d):
            names.append(f"conv{block}_{index}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{index}")
            index += 1
        else:
            names.append(f"pool{block}")
            block, index = block + 1, 1
    return names


def _torchvision_vgg(arch: str, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    builders = {"vgg16": (tvm.vgg16, tvm.VGG16_Weights), "vgg19": (tvm.vgg19, tvm.VGG19_Weights)}
    if arch not in builders:
        raise NStreamError(f"unknown loss network architecture {arch!r}: use vgg16 or vgg19")
    build, weights_enum = builders[arch]
    if not pretrained:
        return build(weights=None)
    weights = weights_enum.IMAGENET1K_V1
    try:
        # torchvision downloads into the torch hub cache and checks the file's hash.
        return build(weights=weights, progress=False)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise NStreamError(
            f"ImageNet {arch.upper()} weights are not in {cache} and could not be downloaded "
            f"({type(exc).__name__}); pass --vgg-weights FILE or use --loss-net random"
        ) from None


def _randomize(features: nn.Sequential, seed: int) -> nn.Sequential:
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for module in features:
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                module.bias.zero_()
        if isinstance(module, nn.MaxPool2d):
            module = nn.AvgPool2d(kernel_size=2, stride=2)
        layers.append(module)
    return nn.Sequential(*layers)


def vgg_features(
    arch: str = "vgg16",
    loss_net: str = "imagenet",
    weights_file: str | Path | None = None,
    seed: int = 0,
) -> nn.Sequential:
    """Return VGG ``features`` (conv/relu/pool stack), frozen, in eval mode.

    ``weights_file`` is a torchvision VGG state dict (full model or features only), loaded
    with ``weights_only=True`` so a model file can never run code.
    """
    if loss_net not in VGG_NETS:
        raise NStreamError(f"unknown VGG --loss-net {loss_net!r}: choose one of {', '.join(VGG_NETS)}")
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise NStreamError(f"VGG weights file not found: {path}")
        model = _torchvision_vgg(arch, pretrained=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
            if not any(k.startswith("features.") for k in state):
                state = {f"features.{k}": v for k, v in state.items()}
            model.load_state_dict(state, strict=False)
            missing = [k for k in model.features.state_dict() if f"features.{k}" not in state]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
            raise NStreamError(f"cannot read VGG weights from {path}: {exc}") from None
        if missing:
            raise NStreamError(f"{path} is not a {arch} state dict (missing {missing[0]})")
        features = model.features
    elif loss_net == "random":
        features = _randomize(_torchvision_vgg(arch, pretrained=False).features, seed)
    else:
        features = _torchvision_vgg(arch, pretrained=True).features
    features.eval()
    for p in features.parameters():
        p.requires_grad_(False)
    return features


class MultiLayerEncoder(nn.Module):
    """Runs a network once, truncated after the deepest requested layer, returning those layers.

    Input: RGB in [0, 1], NCHW. ``features`` is a VGG ``features`` stack (its layers named
    conv1_1, relu1_1, ...) or named stages; ``normalize``: ImageNet mean/std first (VGG's input).
    ``smooth_style`` tells the style losses how to smooth these features before their Gram matrices
    (:func:`nstream.losses.swag`; None: not at all).
    """

    def __init__(self, features: nn.Sequential | list[tuple[str, nn.Module]], layers: list[str],
                 normalize: bool = True, smooth_style: str | None = None, kind: str = "VGG") -> None:
        super().__init__()
        if isinstance(features, nn.Sequential):
            names, modules = _layer_names(features), list(features)
        else:
            names, modules = [name for name, _ in features], [module for _, module in features]
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise NStreamError(f"unknown {kind} layer {unknown[0]!r}; known: {', '.join(names)}")
        depth = max(names.index(name) for name in layers) + 1
        self.features = nn.Sequential(*modules[:depth])
        self.names = names[:depth]
        self.wanted = set(layers)
        self.normalize = normalize
        self.smooth_style = smooth_style
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize:
            x = (x - self.mean) / self.std
        out = {}
        for name, module in zip(self.names, self.features, strict=True):
            x = module(x)
            if name in self.wanted:
                out[name] = x
        return out


def magenta_stages() -> list[tuple[str, nn.Module]]:
    """The style predictor's MobileNetV2 as named stages (``stem``, ``block1`` .. ``block17``), frozen.

    It takes pixels in [0, 1] (the predictor divides its 0..255 input by 255 before the stem).
    """
    from nstream.models.style_spec import pretrained

    predictor = copy.deepcopy(pretrained("magenta_predictor")[0])  # the shared predictor stays where it is
    stages = [("stem", predictor.stem)] + [(f"block{i + 1}", block) for i, block in enumerate(predictor.blocks)]
    for _, module in stages:
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return stages


def build_encoder(loss_net: str, layers: list[str], arch: str = "vgg19", weights_file: str | Path | None = None,
                  seed: int = 0) -> MultiLayerEncoder:
    """The multi-layer encoder for ``--loss-net`` (``arch``: the VGG, vgg16 or vgg19, for the VGG nets)."""
    if loss_net == "magenta":
        if weights_file is not None:
            raise NStreamError("--vgg-weights is for the VGG loss networks, not --loss-net magenta: pick one")
        return MultiLayerEncoder(magenta_stages(), layers, normalize=False, smooth_style=MAGENTA_SMOOTHING,
                                 kind="MobileNetV2")
    return MultiLayerEncoder(vgg_features(arch, loss_net, weights_file, seed=seed), layers)
