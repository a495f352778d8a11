"""Inference engines behind one interface: ``infer(NCHW float batch in 0..255) -> same``.

Two layers. The shared build layer: ``export`` (ONNX), ``quantize`` (INT8 calibration),
``validate`` (the PSNR gate), ``cache`` (``engines/``), and ``graphs``, which chains them into one
validated, cached graph per model and precision. The backends on top, which use that layer and
never each other: ``torch_engine`` (eager PyTorch), ``onnxrt`` (ONNX Runtime), ``graph_engine``
(a shipped ONNX graph, no PyTorch: the light install), ``trt_engine`` (TensorRT) and
``torch2trt_engine``. Beside them: ``base`` (the interface), ``precision`` (``resolve_precision``:
what ``auto`` precision means), ``factory`` (``create_engine`` and the ``auto`` engine), ``bundled``
(writes the shipped graphs). The device picker is :func:`nstream.devices.pick_device`.

The names below load on first use (PEP 562), so importing the package, or its PyTorch-free
``graph_engine``, does not import PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

ENGINES = ("auto", "torch", "onnxruntime", "tensorrt", "torch2trt")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
_LAZY = {"Engine": "base", "TorchEngine": "torch_engine", "pick_device": "base", "auto_choice": "factory",
         "create_engine": "factory", "resolve_precision": "precision"}

__all__ = ["ENGINES", "PRECISIONS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"nstream.engines.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'nstream.engines' has no attribute {name!r}")
