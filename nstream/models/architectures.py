"""The registry of style-network architectures, by the name stored in checkpoints."""

from __future__ import annotations

from torch import nn

from nstream.models.johnson import TransformerNet, TransformerNetDeconv
from nstream.models.lite import LiteNet

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "johnson": TransformerNet,
    "johnson_deconv": TransformerNetDeconv,
    "lite": LiteNet,
}
