"""``create_engine``: one entry point for every backend, the ``auto`` choice, and the reason for both."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from nstream.devices import pick_device
from nstream.engines.base import ENGINES, Engine
from nstream.engines.cache import EngineCache
from nstream.engines.graphs import CHECK_SIZE
from nstream.engines.precision import device_type, resolve_precision
from nstream.engines.torch_engine import TorchEngine
from nstream.errors import NStreamError

if TYPE_CHECKING:
    from nstream.engines.trt_engine import Profile

log = logging.getLogger("nstream.engines")


def available(module: str) -> bool:
    """Whether a backend's package is importable, without importing it (TensorRT imports are slow)."""
    return importlib.util.find_spec(module) is not None


def ort_has_cuda() -> bool:
    """Whether the installed onnxruntime is the GPU build (its CUDA provider is listed)."""
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


def set_threads(threads: int | None) -> None:
    """Cap torch's CPU threads too (ONNX Runtime gets ``threads`` per session): the torch work beside the
    engine (the style predictor of --strength, RAFT) must not take every core on each worker. None leaves
    all cores. Torch's count is process-wide: it stays capped for the rest of the process."""
    if threads is None:
        return
    if threads < 1:
        raise NStreamError(f"--threads {threads}: use 1 or more")
    torch.set_num_threads(threads)


def create_engine(kind: str, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto", *,
                  cache: EngineCache | str | Path | None = None, calibration: str | Path | None = None,
                  threads: int | None = None, check_size: tuple[int, int] | None = CHECK_SIZE,
                  profile: Profile | None = None, workspace_gib: float = 4.0) -> Engine:
    """Build the engine ``kind`` for ``model``, its ``reason`` saying why that engine and precision.

    ``cache``, ``calibration`` and ``check_size`` (W, H of the held-out frames of the PSNR gate) are
    for the backends that build from ONNX (onnxruntime, tensorrt); ``profile`` (min, opt, max HxW)
    and ``workspace_gib`` for tensorrt alone; ``threads`` caps the CPU threads of torch and ONNX
    Runtime (None: all cores). An option a backend does not use is ignored.
    """
    if kind not in ENGINES:
        raise NStreamError(f"unknown --engine {kind!r}: choose one of {', '.join(ENGINES)}")
    target = pick_device(device)
    set_threads(threads)
    reason = "asked for"
    if kind == "auto":
        kind, reason = auto_choice(target)
        if kind == "torch" and precision == "int8":
            raise NStreamError("int8 needs --engine onnxruntime or tensorrt (pip install 'nstream[onnx]')")
    resolved = resolve_precision(kind, target, precision)
    if precision == "auto":
        reason += f"; {resolved}: the auto precision of {kind} on {device_type(target).upper()}"
    store = cache if cache is None or isinstance(cache, EngineCache) else EngineCache(cache)
    graph_options = {"cache": store, "calibration": calibration, "check_size": check_size}
    engine: Engine
    if kind == "torch":
        engine = TorchEngine(model, target, resolved, reason=reason)
    elif kind == "onnxruntime":
        engine = _onnxruntime(model, target, resolved, reason, threads=threads, **graph_options)
    elif kind == "tensorrt":
        from nstream.engines.trt_engine import DEFAULT_PROFILE, TensorRTEngine

        engine = TensorRTEngine(model, target, resolved, profile=profile or DEFAULT_PROFILE,
                                workspace_gib=workspace_gib, reason=reason, **graph_options)
    else:
        from nstream.engines.torch2trt_engine import Torch2TRTEngine

        engine = Torch2TRTEngine(model, target, resolved, reason=reason)
    log.info("engine: %s %s on %s (%s)", engine.name, engine.precision, engine.device, engine.reason)
    return engine


def _onnxruntime(model: nn.Module, device: torch.device, precision: str, reason: str, *,
                 cache: EngineCache | None, calibration: str | Path | None, threads: int | None,
                 check_size: tuple[int, int] | None) -> Engine:
    """ONNX Runtime; when ``auto`` chose it and it cannot run (fp32/fp16), eager PyTorch with the failure as reason."""
    from nstream.engines.onnxrt import OnnxRuntimeEngine

    try:
        return OnnxRuntimeEngine(model, device, precision, cache=cache, calibration=calibration, threads=threads,
                                 check_size=check_size, reason=reason)
    except NStreamError as exc:
        if reason.startswith("asked for") or precision == "int8":
            raise
        log.warning("ONNX Runtime engine unavailable (%s); using eager PyTorch", exc)
        return TorchEngine(model, device, precision, reason=f"auto: ONNX Runtime failed ({exc}); eager PyTorch")
