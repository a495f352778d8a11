"""ONNX Runtime: the validated ONNX graph (fp32, fp16 or int8 Q/DQ), cached, on CPU or CUDA.

The graph comes from the shared build layer (:mod:`nstream.engines.graphs`), the same one TensorRT
builds its plans from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nstream.devices import pick_device
from nstream.engines.base import require_open, require_style, warmup_style
from nstream.engines.cache import EngineCache
from nstream.engines.export import INPUT, OUTPUT, STYLE, style_dim
from nstream.engines.graph_engine import GraphEngine
from nstream.engines.graphs import CHECK_SIZE, validated_graph
from nstream.engines.precision import resolve_precision
from nstream.errors import NStreamError

__all__ = ["OnnxRuntimeEngine", "validated_graph"]


def cuda_session(path: Path, device: torch.device) -> Any:
    """An ONNX Runtime session on the CUDA provider of ``device``; a CPU-only onnxruntime is a user error."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise NStreamError("this onnxruntime has no CUDA provider: pip install onnxruntime-gpu, or use --device cpu")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    provider = ("CUDAExecutionProvider", {"device_id": device.index or 0})
    return ort.InferenceSession(str(path), options, providers=[provider])


class OnnxRuntimeEngine:
    """ONNX Runtime on CPU, or with its CUDA provider when the device is a GPU and the provider is present."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto", *,
                 cache: EngineCache | None = None, calibration: str | Path | None = None,
                 threads: int | None = None, check_size: tuple[int, int] | None = CHECK_SIZE,
                 reason: str = "asked for") -> None:
        self.device = pick_device(device)
        self.precision = resolve_precision(self.name, self.device, precision)
        self.reason = reason
        self.style_dim = style_dim(model)
        self.build = validated_graph(model, self.precision, cache, calibration, check_size)
        self.psnr = self.build.psnr
        self.cache_status = self.build.cache_status
        self.graph: GraphEngine | None = None
        self.session: Any
        if self.device.type == "cuda":
            self.session = cuda_session(self.build.path, self.device)
        else:
            self.graph = GraphEngine(self.build.path, threads, self.precision, reason=reason)
            self.session = self.graph.session

    def infer(self, batch: torch.Tensor | np.ndarray, style: torch.Tensor | np.ndarray | None = None
              ) -> torch.Tensor | np.ndarray:
        """NCHW in 0..255 to the same; a NumPy array in gives one back, a tensor a tensor."""
        if self.device.type == "cuda":
            if isinstance(batch, np.ndarray):
                return self._infer_cuda(torch.from_numpy(batch), style).cpu().numpy()
            return self._infer_cuda(batch, style)
        if self.style_dim is not None:
            style = require_style(style, self.style_dim)
        out = require_open(self.graph, self.name).infer(batch, style)
        return out if isinstance(batch, np.ndarray) else torch.from_numpy(out)

    def _infer_cuda(self, batch: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """Zero-copy through I/O binding: input and output stay in torch-owned GPU memory."""
        session = require_open(self.session, self.name)
        x = batch.detach().to(self.device, torch.float32).contiguous()
        y = torch.empty_like(x)  # the networks map NCHW to NCHW of the same size
        binding = session.io_binding()
        index = self.device.index or 0
        if self.style_dim is not None:
            s = require_style(style, self.style_dim).to(self.device).contiguous()
            binding.bind_input(STYLE, "cuda", index, np.float32, tuple(s.shape), s.data_ptr())
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(y.shape), y.data_ptr())
        session.run_with_iobinding(binding)
        return y

    def warmup(self, height: int, width: int) -> None:
        """One call at the working size, so the first frame does not pay for the session's first-run setup."""
        self.infer(torch.zeros(1, 3, height, width, device=self.device), warmup_style(self))

    def close(self) -> None:
        """Release the ONNX Runtime session (CPU or CUDA); a second call does nothing."""
        if self.graph is not None:
            self.graph.close()
            self.graph = None
        self.session = None
