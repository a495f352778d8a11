"""The shared build layer: export, quantize, validate and cache, as every backend uses them.

:func:`validated_graph` turns a model into an ONNX graph of one precision (export; fp16 casts or
int8 Q/DQ from the calibration frames), runs it through ONNX Runtime against PyTorch on held-out
frames (:func:`gate`) and caches it. ONNX Runtime runs that graph; TensorRT builds its plan from it
and checks the plan with the same gate. Backends import from here (and from ``export``,
``quantize``, ``validate``, ``cache`` below it), never from one another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from nstream.engines.cache import CacheKey, EngineCache, model_hash
from nstream.engines.export import check_styles, export_onnx, style_dim, to_fp16
from nstream.engines.graph_engine import GraphEngine, require_ort
from nstream.engines.quantize import calibration_dirs, frames_hash, load_frames, quantize_int8, synthetic_images
from nstream.engines.validate import check_engine, torch_reference
from nstream.errors import NStreamError

log = logging.getLogger("nstream.engines")
GRAPH_VERSION = 3  # 3: lite's folded head. Bump when export/quantization changes what a cached graph contains
GRAPH_FILE = "model.onnx"
CHECK_SIZE = (256, 144)  # (W, H) of the held-out frames the gate runs on
GRAPH_PRECISIONS = ("fp32", "fp16", "int8")


def ort_version() -> str:
    """ONNX Runtime's version, part of a graph's cache key (its quantizer writes the int8 graphs)."""
    import onnxruntime

    return onnxruntime.__version__


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


def gate(run: Callable[..., np.ndarray], model: nn.Module, precision: str, what: str,
         holdout: list[np.ndarray]) -> float:
    """PSNR of ``run`` against PyTorch fp32 over the held-out frames (each with a reference style for a
    conditioned network); raises when it is below the precision's threshold."""
    styles = check_styles(model, len(holdout))
    return check_engine(run, torch_reference(model, holdout, styles), holdout, precision, what, styles)


def calibration_frames(model: nn.Module, calibration: str | Path | None,
                       check_size: tuple[int, int] | None) -> list[np.ndarray]:
    """The int8 calibration frames; a conditioned network sees every reference style, the frames in turn."""
    calib = load_frames(calibration_dirs(calibration)[0], check_size)
    if style_dim(model) is not None:
        calib = [calib[i % len(calib)] for i in range(max(len(calib), len(model.reference_styles)))]
    return calib


def graph_key(model: nn.Module, precision: str, calib: list[np.ndarray]) -> CacheKey:
    """What a cached graph depends on: weights, precision, the exporter and quantizer, the calibration set."""
    versions = f"onnx{onnx.__version__}-ort{ort_version()}-torch{torch.__version__}-g{GRAPH_VERSION}"
    return CacheKey("onnx", model_hash(model), precision, "dynamic HxW", versions, "any",
                    extra=f"calib:{frames_hash(calib)}" if calib else "")


def build_graph(model: nn.Module, precision: str, calib: list[np.ndarray]) -> onnx.ModelProto:
    """Export ``model``, then cast it to fp16 or quantize it to int8 Q/DQ as ``precision`` says."""
    graph = export_onnx(model)
    if precision == "fp16":
        return to_fp16(graph)
    if precision == "int8":
        return quantize_int8(graph, calib, keep_head=getattr(model, "int8_keep_head", 2),
                             styles=check_styles(model, len(calib)))
    return graph


def validated_graph(model: nn.Module, precision: str, cache: EngineCache | None = None,
                    calibration: str | Path | None = None, check_size: tuple[int, int] | None = CHECK_SIZE,
                    ) -> GraphBuild:
    """Export (and for int8 quantize) ``model``, check it through ONNX Runtime, cache it; or reuse the cache."""
    require_ort()
    if precision not in GRAPH_PRECISIONS:
        raise NStreamError(f"ONNX graphs come in fp32, fp16 or int8, not {precision!r}")
    cache = cache or EngineCache()
    calib = calibration_frames(model, calibration, check_size) if precision == "int8" else []
    key = graph_key(model, precision, calib)
    path, status = cache.fetch(key, GRAPH_FILE)
    if path is not None:
        return GraphBuild(path, float(cache.info(key).get("psnr", float("nan"))), status)
    started = time.perf_counter()
    data = build_graph(model, precision, calib).SerializeToString()
    holdout = holdout_frames(calibration_dirs(calibration)[1], check_size)
    checking = GraphEngine(data)
    worst = gate(checking.infer, model, precision, f"the {precision} ONNX graph", holdout)
    checking.close()
    info = {"psnr": worst, "build_seconds": round(time.perf_counter() - started, 2), "holdout_frames": len(holdout)}
    log.info("built %s ONNX graph: PSNR %.1f dB vs PyTorch on %d held-out frames", precision, worst, len(holdout))
    return GraphBuild(cache.commit(key, GRAPH_FILE, data, info), worst, status)
