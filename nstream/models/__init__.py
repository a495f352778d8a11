"""Style networks, their checkpoint format and the style registry.

The names below load on first use (PEP 562): ``registry`` and ``style_spec`` work without PyTorch
(the light install), the networks themselves need it.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"ARCHITECTURES": "architectures", "TransformerNet": "johnson", "TransformerNetDeconv": "johnson",
         "LiteNet": "lite"}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nstream.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nstream.models' has no attribute {name!r}")
