"""VGG loss networks: ImageNet weights the standard way, or a seeded random VGG.

Training (VGG16) and the offline optimizer (VGG19) both read features through
:class:`MultiLayerEncoder`, which runs the network once and only as deep as the deepest layer
asked for. Without ImageNet weights (no internet here), ``random`` builds a seeded,
Kaiming-initialized VGG with average pooling: random deep features still carry texture
statistics, so Gram-matrix style losses on them transfer style recognisably.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nstream.errors import NStreamError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LOSS_NETS = ("imagenet", "random")


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
    if loss_net not in LOSS_NETS:
        raise NStreamError(f"unknown --loss-net {loss_net!r}: choose one of {', '.join(LOSS_NETS)}")
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
    """Runs a VGG once, truncated after the deepest requested layer, returning those layers.

    Input: RGB in [0, 1], NCHW. ImageNet normalization happens inside.
    """

    def __init__(self, features: nn.Sequential, layers: list[str]) -> None:
        super().__init__()
        names = _layer_names(features)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise NStreamError(f"unknown VGG layer {unknown[0]!r}; known: {', '.join(names)}")
        depth = max(names.index(name) for name in layers) + 1
        self.features = nn.Sequential(*list(features)[:depth])
        self.names = names[:depth]
        self.wanted = set(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        out = {}
        for name, module in zip(self.names, self.features, strict=True):
            x = module(x)
            if name in self.wanted:
                out[name] = x
        return out
