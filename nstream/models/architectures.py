"""The registry of network architectures, by the name stored in checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from nstream.models.conditioned import LAYOUTS, compact_network, magenta_transformer, tf26_network
from nstream.models.johnson import TransformerNet, TransformerNetDeconv
from nstream.models.lite import LiteNet
from nstream.models.predictor import StylePredictor

MAGENTA_STYLE_DIM = LAYOUTS["magenta"].style_dim  # the length of the predictor's style vectors

# One network, one style: ``net(pixels) -> pixels``. What ``nstream train`` makes.
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "johnson": TransformerNet,
    "johnson_deconv": TransformerNetDeconv,
    "lite": LiteNet,
    "compact": compact_network,  # Magenta's transformer layout for one style (models/conditioned.py)
}
# One network, many styles: ``net(pixels, style_vector) -> pixels`` (models/conditioned.py).
CONDITIONED: dict[str, Callable[[], nn.Module]] = {
    "magenta": magenta_transformer,
    "tf26": tf26_network,
    "magenta_lite": lambda: LiteNet(style_dim=MAGENTA_STYLE_DIM),  # lite on Magenta's vectors (distilled)
}
# Every architecture a checkpoint may name, the style predictor (painting -> style vector) included.
BUILDERS: dict[str, Callable[[], nn.Module]] = {**ARCHITECTURES, **CONDITIONED, "magenta_predictor": StylePredictor}
