"""nstream: real-time neural style transfer for video.

The Python API (nstream/api.py) loads on first use, so ``import nstream`` stays light:
``nstream.stylize_video``, ``nstream.build_session``, ``nstream.Session`` and the typed configs
``StreamConfig``, ``SourceConfig``, ``StyleConfig``, ``EngineConfig``, ``TemporalConfig``, ``EncodeConfig``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {"stylize_video": "nstream.api", "build_session": "nstream.session", "Session": "nstream.session",
         "StreamConfig": "nstream.config", "SourceConfig": "nstream.config", "StyleConfig": "nstream.config",
         "EngineConfig": "nstream.config", "EncodeConfig": "nstream.config", "TemporalConfig": "nstream.temporal.config"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nstream' has no attribute {name!r}")
