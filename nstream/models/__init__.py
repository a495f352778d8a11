"""Style networks, their checkpoint format and the style registry."""

from nstream.models.johnson import ARCHITECTURES, TransformerNet

__all__ = ["ARCHITECTURES", "TransformerNet"]
