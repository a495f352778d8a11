"""TensorRT 10/11: a strongly typed network built from the ONNX graph ONNX Runtime validated.

Precision comes from the graph, not from builder flags (TensorRT 11 has none): fp16 from the
fp16 graph, int8 from the Q/DQ graph, fp32 from the fp32 graph. One optimization profile spans
a height/width range; plans are cached in ``engines/`` and a timing cache makes rebuilds quick.

NOT VERIFIED: no machine of this project has TensorRT. This code follows the documented Python
API (build_serialized_network, set_input_shape, set_tensor_address, execute_async_v3) and its
tests skip where TensorRT or a GPU is absent. The ONNX graph it parses is the one ONNX Runtime
runs and the tests check (:func:`nstream.engines.graphs.validated_graph`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nstream.devices import pick_device
from nstream.engines.base import require_open, require_style, warmup_style
from nstream.engines.cache import CacheKey, EngineCache, device_tag, model_hash
from nstream.engines.export import INPUT, OUTPUT, STYLE, style_dim
from nstream.engines.graphs import CHECK_SIZE, GraphBuild, gate, holdout_frames, validated_graph
from nstream.engines.precision import resolve_precision
from nstream.engines.quantize import calibration_dirs
from nstream.errors import NStreamError

log = logging.getLogger("nstream.engines")
PLAN_FILE = "model.plan"
TIMING_CACHE = "timing.cache"
# (min, opt, max) of (height, width); multiples of 4 as the stylizer pads to.
Profile = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
DEFAULT_PROFILE: Profile = ((64, 64), (720, 1280), (1088, 1920))


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or one line saying how to get it."""
    try:
        import tensorrt
    except ImportError:
        raise NStreamError("TensorRT is not installed: pip install 'nstream[tensorrt]' on a machine with an NVIDIA GPU, "
                           "or use --engine onnxruntime/torch") from None
    return tensorrt


def parse_profile(text: str) -> Profile:
    """``HxW:HxW:HxW`` (min:opt:max) into sizes, each a multiple of 4 and ordered."""
    try:
        sizes = tuple(tuple(int(v) for v in part.lower().split("x")) for part in text.split(":"))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or any(len(s) != 2 or s[0] % 4 or s[1] % 4 or min(s) < 4 for s in sizes):
        raise NStreamError(f"bad shape range {text!r}: give min:opt:max as HxW:HxW:HxW, multiples of 4 (64x64:720x1280:1088x1920)")
    low, opt, high = sizes
    if not all(low[i] <= opt[i] <= high[i] for i in (0, 1)):
        raise NStreamError(f"bad shape range {text!r}: need min <= opt <= max in both height and width")
    return sizes  # type: ignore[return-value]


class TensorRTEngine:
    """A TensorRT plan for one style, precision and shape range, run on torch-owned CUDA memory."""

    name = "tensorrt"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto", *,
                 cache: EngineCache | None = None, calibration: str | Path | None = None,
                 profile: Profile = DEFAULT_PROFILE, check_size: tuple[int, int] | None = CHECK_SIZE,
                 workspace_gib: float = 4.0, reason: str = "asked for") -> None:
        trt = import_tensorrt()
        self.device = pick_device(device)
        if self.device.type != "cuda":
            raise NStreamError("the tensorrt engine needs a CUDA GPU: use --engine onnxruntime on CPU")
        self.precision = resolve_precision(self.name, self.device, precision)
        self.profile, self.reason, self.workspace_gib = profile, reason, workspace_gib
        self.style_dim = style_dim(model)
        self.cache = cache or EngineCache()
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)  # outlives the engine it deserializes (released last in close)
        self.build = validated_graph(model, self.precision, self.cache, calibration, check_size)
        key = self._plan_key(trt, model)
        self.plan_path = self.cache.entry(key) / PLAN_FILE
        plan = self._load(trt, key)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        if self.cache_status == "hit":
            self.psnr = float(self.cache.info(key).get("psnr", float("nan")))
            return

        def run(x: Any, style: Any = None) -> Any:
            return self.infer(torch.from_numpy(x), None if style is None else torch.from_numpy(style)).cpu().numpy()

        holdout = holdout_frames(calibration_dirs(calibration)[1], check_size)
        self.psnr = gate(run, model, self.precision, f"the TensorRT {self.precision} plan", holdout)
        self.cache.commit(key, PLAN_FILE, plan, {"psnr": self.psnr})

    def _plan_key(self, trt: Any, model: nn.Module) -> CacheKey:
        """A plan depends on the graph it was built from, the shape range, TensorRT's version and the GPU."""
        shape_range = ":".join(f"{h}x{w}" for h, w in self.profile)
        return CacheKey("tensorrt", model_hash(model), self.precision, shape_range, f"trt{trt.__version__}",
                        device_tag(self.device), extra=f"graph:{self.build.path.parent.name}")

    def _load(self, trt: Any, key: CacheKey) -> bytes:
        """The cached plan, or a new one; a cached plan that does not deserialize is rebuilt (sets ``cache_status``)."""
        path, self.cache_status = self.cache.fetch(key, PLAN_FILE)
        plan = path.read_bytes() if path is not None else self._build(trt, self.build)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            if path is None:
                raise NStreamError("TensorRT could not load the plan it just built; see the TensorRT log above")
            log.warning("cached TensorRT plan %s does not load; rebuilding", path)
            self.cache.discard(key)
            plan = self._build(trt, self.build)
            self.engine = self.runtime.deserialize_cuda_engine(plan)
            self.cache_status = "corrupt: plan does not deserialize"
        return plan

    def _build(self, trt: Any, graph: GraphBuild) -> bytes:
        """ONNX -> strongly typed network -> serialized plan, reusing and updating the timing cache."""
        started = time.perf_counter()
        builder = trt.Builder(self.logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(graph.path.read_bytes()):
            first = parser.get_error(0).desc() if parser.num_errors else "unknown error"
            raise NStreamError(f"TensorRT cannot parse the ONNX graph: {first}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.workspace_gib * (1 << 30)))
        shapes = [(1, 3, h, w) for h, w in self.profile]
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT, *shapes)
        if self.style_dim is not None:  # one vector per frame, whatever the frame size
            profile.set_shape(STYLE, *[(1, self.style_dim)] * 3)
        config.add_optimization_profile(profile)
        timing_path = self.cache.root / f"{TIMING_CACHE}-trt{trt.__version__}-{device_tag(self.device).replace(' ', '_')}"
        blob = timing_path.read_bytes() if timing_path.is_file() else b""
        timing = config.create_timing_cache(blob)
        config.set_timing_cache(timing, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise NStreamError(f"TensorRT failed to build the {self.precision} engine; see the TensorRT log above")
        self.cache.root.mkdir(parents=True, exist_ok=True)
        tmp = timing_path.with_name(timing_path.name + ".tmp")
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
        tmp.replace(timing_path)
        log.info("built TensorRT %s plan in %.0f s", self.precision, time.perf_counter() - started)
        return bytes(plan)

    def infer(self, batch: Any, style: Any = None) -> Any:
        """NCHW in 0..255 to the same; a NumPy array in gives one back (copied to and from the GPU)."""
        context = require_open(self.context, self.name)
        if not isinstance(batch, torch.Tensor):
            return self.infer(torch.from_numpy(batch), style).cpu().numpy()
        (low_h, low_w), _, (high_h, high_w) = self.profile
        height, width = batch.shape[-2:]
        if not (low_h <= height <= high_h and low_w <= width <= high_w):
            raise NStreamError(f"frame {width}x{height} is outside this TensorRT engine's range "
                               f"{low_w}x{low_h}..{high_w}x{high_h}: rebuild with a wider --shape-range")
        x = batch.detach().to(self.device, torch.float32).contiguous()
        y = torch.empty_like(x)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        context.set_input_shape(INPUT, tuple(x.shape))
        context.set_tensor_address(INPUT, x.data_ptr())
        if self.style_dim is not None:
            s = require_style(style, self.style_dim).to(self.device).contiguous()
            context.set_input_shape(STYLE, tuple(s.shape))
            context.set_tensor_address(STYLE, s.data_ptr())
            s.record_stream(self.stream)
        context.set_tensor_address(OUTPUT, y.data_ptr())
        if not context.execute_async_v3(self.stream.cuda_stream):
            raise NStreamError("TensorRT execution failed; see the TensorRT log above")
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        x.record_stream(self.stream)
        y.record_stream(self.stream)
        return y

    def warmup(self, height: int, width: int) -> None:
        """One call at the working size: TensorRT sets up the profile's shapes before the first real frame."""
        self.infer(torch.zeros(1, 3, height, width, device=self.device), warmup_style(self))
        torch.cuda.synchronize(self.device)

    def close(self) -> None:
        """Release the execution context, then the engine, then the runtime (TensorRT's required order),
        after the work queued on the stream; a second call does nothing."""
        if self.context is None:
            return
        self.stream.synchronize()
        self.context = None
        self.engine = None
        self.runtime = None
