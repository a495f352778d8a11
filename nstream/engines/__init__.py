"""Inference engines behind one interface: ``infer(NCHW float batch in 0..255) -> same``.

``base`` (interface, eager PyTorch), ``export`` (ONNX), ``onnxrt`` (ONNX Runtime), ``trt_engine``
(TensorRT), ``torch2trt_engine``, ``quantize`` (INT8 calibration), ``validate`` (the PSNR gate),
``cache`` (``engines/``), ``factory`` (``create_engine`` and ``auto``).
"""

from nstream.engines.base import ENGINES, PRECISIONS, Engine, TorchEngine, pick_device
from nstream.engines.factory import auto_choice, create_engine

__all__ = ["ENGINES", "PRECISIONS", "Engine", "TorchEngine", "auto_choice", "create_engine", "pick_device"]
