"""Inference engines behind one interface: ``infer(NCHW float batch in 0..255) -> same``.

``base`` (interface, eager PyTorch), ``export`` (ONNX), ``onnxrt`` (ONNX Runtime), ``graph_engine``
(a shipped ONNX graph, no PyTorch: the light install), ``bundled`` (writes those graphs),
``trt_engine`` (TensorRT), ``torch2trt_engine``, ``quantize`` (INT8 calibration), ``validate``
(the PSNR gate), ``cache`` (``engines/``), ``factory`` (``create_engine`` and ``auto``).

The names below load on first use (PEP 562), so importing the package, or its PyTorch-free
``graph_engine``, does not import PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINES = ("auto", "torch", "onnxruntime", "tensorrt", "torch2trt")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
_LAZY = {"Engine": "base", "TorchEngine": "base", "pick_device": "base", "auto_choice": "factory",
         "create_engine": "factory"}

__all__ = ["ENGINES", "PRECISIONS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nstream.engines.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nstream.engines' has no attribute {name!r}")
