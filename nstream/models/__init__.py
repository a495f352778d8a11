"""Style networks, their checkpoint format and the style registry."""

from nstream.models.architectures import ARCHITECTURES
from nstream.models.johnson import TransformerNet, TransformerNetDeconv
from nstream.models.lite import LiteNet

__all__ = ["ARCHITECTURES", "LiteNet", "TransformerNet", "TransformerNetDeconv"]
