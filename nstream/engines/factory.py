"""``create_engine``: one entry point for every backend, and the ``auto`` choice with its reason."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nstream.engines.base import ENGINES, PRECISIONS, Engine, TorchEngine, pick_device
from nstream.engines.cache import EngineCache
from nstream.errors import NStreamError

log = logging.getLogger("nstream.engines")


def available(module: str) -> bool:
    """Whether a backend's package is importable, without importing it (TensorRT imports are slow)."""
    return importlib.util.find_spec(module) is not None


def ort_has_cuda() -> bool:
    if not available("onnxruntime"):
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def auto_choice(device: torch.device) -> tuple[str, str]:
    """(engine kind, why): fastest present for the device, per docs/BENCHMARKS.md."""
    if device.type == "cuda":
        if available("tensorrt"):
            return "tensorrt", "CUDA GPU and TensorRT installed: TensorRT is the fastest backend"
        if ort_has_cuda():
            return "onnxruntime", "CUDA GPU, no TensorRT: ONNX Runtime's CUDA provider"
        return "torch", "CUDA GPU, but neither TensorRT nor onnxruntime-gpu is installed: eager PyTorch fp16"
    if available("onnxruntime"):
        return "onnxruntime", "CPU: ONNX Runtime measured faster than eager PyTorch on CPU (docs/BENCHMARKS.md)"
    return "torch", "CPU and no onnxruntime installed: eager PyTorch (pip install 'nstream[onnx]' for ONNX Runtime)"


def create_engine(kind: str, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto",
                  cache: EngineCache | str | Path | None = None, calibration: str | Path | None = None,
                  threads: int | None = None, **options: Any) -> Engine:
    """Build the engine ``kind`` for ``model``; ``auto`` picks and stores its reason on ``engine.reason``.

    ``threads`` caps the CPU threads of torch and ONNX Runtime (None: all cores).
    """
    if kind not in ENGINES:
        raise NStreamError(f"unknown --engine {kind!r}: choose one of {', '.join(ENGINES)}")
    if precision not in PRECISIONS:
        raise NStreamError(f"unknown --precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    target = pick_device(device)
    if threads is not None:
        if threads < 1:
            raise NStreamError(f"--threads {threads}: use 1 or more")
        torch.set_num_threads(threads)
    if cache is not None and not isinstance(cache, EngineCache):
        cache = EngineCache(cache)
    reason = "asked for"
    if kind == "auto":
        kind, reason = auto_choice(target)
        if kind == "torch" and precision == "int8":
            raise NStreamError("int8 needs --engine onnxruntime or tensorrt (pip install 'nstream[onnx]')")
    engine: Engine
    if kind == "torch":
        engine = TorchEngine(model, target, precision)
    elif kind == "onnxruntime":
        from nstream.engines.onnxrt import OnnxRuntimeEngine

        try:
            engine = OnnxRuntimeEngine(model, target, precision, cache=cache, calibration=calibration, threads=threads,
                                       **options)
        except NStreamError as exc:
            if reason == "asked for" or precision == "int8":
                raise
            log.warning("ONNX Runtime engine unavailable (%s); using eager PyTorch", exc)
            engine, reason = TorchEngine(model, target, precision), f"auto: ONNX Runtime failed ({exc}); eager PyTorch"
    elif kind == "tensorrt":
        from nstream.engines.trt_engine import TensorRTEngine

        engine = TensorRTEngine(model, target, precision, cache=cache, calibration=calibration, **options)
    else:
        from nstream.engines.torch2trt_engine import Torch2TRTEngine

        engine = Torch2TRTEngine(model, target, precision)
    engine.reason = reason
    log.info("engine: %s %s on %s (%s)", engine.name, engine.precision, engine.device, reason)
    return engine
