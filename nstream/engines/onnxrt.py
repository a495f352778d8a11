"""ONNX Runtime: the validated ONNX graph (fp32, fp16 or int8 Q/DQ), cached, on CPU or CUDA.

:func:`validated_graph` is also where TensorRT gets its input: the graph it builds from is the
one ONNX Runtime has run and compared with PyTorch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from nstream.engines.base import pick_device, require_style, warmup_style
from nstream.engines.cache import CacheKey, EngineCache, model_hash
from nstream.engines.export import INPUT, OUTPUT, STYLE, check_styles, export_onnx, style_dim, to_fp16
from nstream.engines.graph_engine import GraphEngine
from nstream.engines.quantize import calibration_dirs, frames_hash, load_frames, quantize_int8, synthetic_images
from nstream.engines.validate import check_engine, torch_reference
from nstream.errors import NStreamError

log = logging.getLogger("nstream.engines")
GRAPH_VERSION = 2  # bump when export/quantization changes what a cached graph contains
GRAPH_FILE = "model.onnx"
CHECK_SIZE = (256, 144)  # (W, H) of the held-out frames the gate runs on


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _require_ort() -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise NStreamError("onnxruntime is not installed: pip install 'nstream[onnx]' or use --engine torch") from None


@dataclass
class GraphBuild:
    """A graph that passed the PSNR gate, where it lives, and how it got there."""

    path: Path
    psnr: float
    cache_status: str


def holdout_frames(folder: Path, size: tuple[int, int] | None) -> list[np.ndarray]:
    """The held-out frames, or (installed without a checkout) synthetic ones, so fp32/fp16 still get checked."""
    if folder.is_dir():
        return load_frames(folder, size)
    width, height = size or CHECK_SIZE
    return [image.astype(np.float32).transpose(2, 0, 1)[None].copy() for _, image in synthetic_images((width, height))]


def validated_graph(model: nn.Module, precision: str, cache: EngineCache | None = None,
                    calibration: str | Path | None = None, check_size: tuple[int, int] | None = CHECK_SIZE,
                    ) -> GraphBuild:
    """Export (and for int8 quantize) ``model``, check it through ONNX Runtime, cache it; or reuse the cache."""
    _require_ort()
    if precision not in ("fp32", "fp16", "int8"):
        raise NStreamError(f"ONNX graphs come in fp32, fp16 or int8, not {precision!r}")
    cache = cache or EngineCache()
    calib_dir, holdout_dir = calibration_dirs(calibration)
    holdout = holdout_frames(holdout_dir, check_size)
    calib = load_frames(calib_dir, check_size) if precision == "int8" else []
    if calib and style_dim(model) is not None:  # every reference style gets calibrated, the frames in turn
        calib = [calib[i % len(calib)] for i in range(max(len(calib), len(model.reference_styles)))]
    key = CacheKey("onnx", model_hash(model), precision, "dynamic HxW", f"onnx{onnx.__version__}-ort{ort_version()}"
                   f"-torch{torch.__version__}-g{GRAPH_VERSION}", "any",
                   extra=f"calib:{frames_hash(calib)}" if calib else "")
    path, status = cache.fetch(key, GRAPH_FILE)
    if path is not None:
        return GraphBuild(path, float(cache.info(key).get("psnr", float("nan"))), status)
    started = time.perf_counter()
    graph = export_onnx(model)
    if precision == "fp16":
        graph = to_fp16(graph)
    elif precision == "int8":
        graph = quantize_int8(graph, calib, keep_head=getattr(model, "int8_keep_head", 2),
                              styles=check_styles(model, len(calib)))
    data = graph.SerializeToString()
    styles = check_styles(model, len(holdout))
    worst = check_engine(GraphEngine(data).infer, torch_reference(model, holdout, styles), holdout, precision,
                         f"the {precision} ONNX graph", styles)
    info = {"psnr": worst, "build_seconds": round(time.perf_counter() - started, 2), "holdout_frames": len(holdout)}
    log.info("built %s ONNX graph: PSNR %.1f dB vs PyTorch on %d held-out frames", precision, worst, len(holdout))
    return GraphBuild(cache.commit(key, GRAPH_FILE, data, info), worst, status)


class OnnxRuntimeEngine:
    """ONNX Runtime on CPU, or with its CUDA provider when the device is a GPU and the provider is present."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto",
                 cache: EngineCache | None = None, calibration: str | Path | None = None,
                 threads: int | None = None, check_size: tuple[int, int] | None = CHECK_SIZE) -> None:
        _require_ort()
        import onnxruntime as ort

        self.device = pick_device(device)
        self.reason = "asked for"
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision not in ("fp32", "fp16", "int8"):
            raise NStreamError(f"the onnxruntime engine runs fp32, fp16 or int8, not {precision!r}")
        self.precision = precision
        self.style_dim = style_dim(model)
        self.build = validated_graph(model, precision, cache, calibration, check_size)
        self.psnr = self.build.psnr
        self.cache_status = self.build.cache_status
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise NStreamError("this onnxruntime has no CUDA provider: pip install onnxruntime-gpu, or use --device cpu")
            options = ort.SessionOptions()
            options.log_severity_level = 3
            provider = ("CUDAExecutionProvider", {"device_id": self.device.index or 0})
            self.session = ort.InferenceSession(str(self.build.path), options, providers=[provider])
        else:
            self.graph = GraphEngine(self.build.path, threads, precision)
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
        out = self.graph.infer(batch, style)
        return out if isinstance(batch, np.ndarray) else torch.from_numpy(out)

    def _infer_cuda(self, batch: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """Zero-copy through I/O binding: input and output stay in torch-owned GPU memory."""
        x = batch.detach().to(self.device, torch.float32).contiguous()
        y = torch.empty_like(x)  # the networks map NCHW to NCHW of the same size
        binding = self.session.io_binding()
        index = self.device.index or 0
        if self.style_dim is not None:
            s = require_style(style, self.style_dim).to(self.device).contiguous()
            binding.bind_input(STYLE, "cuda", index, np.float32, tuple(s.shape), s.data_ptr())
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(y.shape), y.data_ptr())
        self.session.run_with_iobinding(binding)
        return y

    def warmup(self, height: int, width: int) -> None:
        self.infer(torch.zeros(1, 3, height, width, device=self.device), warmup_style(self))
