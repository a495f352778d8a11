"""An ONNX graph in an ONNX Runtime CPU session, NumPy in and out: the engine of the light install.

Nothing here imports PyTorch. The bundled lite styles and Magenta's networks ship as ONNX graphs
(checked against their PyTorch checkpoints when those graphs were written, and again by the tests),
so ``pip install nstream`` on a CPU runs ``stream.py`` with ONNX Runtime alone; PyTorch
(``nstream[torch]``) is for training, offline, export and the torch/TensorRT engines.
:class:`nstream.engines.onnxrt.OnnxRuntimeEngine` runs its own validated graphs through this class.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from nstream.engines.base import require_open
from nstream.errors import NStreamError

INPUT, OUTPUT, STYLE = "input", "output", "style"  # the names every exported graph uses (engines/export.py)
DYNAMIC_BLOCK_BASE = 4  # ONNX Runtime's session.dynamic_block_base: see cpu_session
TORCH_HINT = "pip install 'nstream[torch]'"  # what to do when something needs PyTorch and it is absent


def torch_installed() -> bool:
    """Whether PyTorch can be imported (without importing it: it takes seconds)."""
    return importlib.util.find_spec("torch") is not None


def require_ort() -> None:
    """One line instead of an ImportError deep in a build when onnxruntime is missing."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise NStreamError("onnxruntime is not installed: pip install onnxruntime (or use --engine torch)")


def cpu_session(graph: bytes | str | Path, threads: int | None = None, spin: bool = False) -> Any:
    """A CPU session with full graph optimization (fuses Conv+Relu, folds DQ into int8 kernels).

    Its worker threads do not spin-wait between calls (``spin``): in the pipeline they share the
    cores with decoding, encoding and the flow worker, and spinning threads took that time. lite at
    360p on 2 cores with blending: 22 fps with spinning, 30 without; unblended the same either way.
    Work is handed out in small blocks (``DYNAMIC_BLOCK_BASE``) rather than one even share per
    thread, so a thread that loses its core to the flow worker does not hold up the whole layer:
    lite blended +4 and +11 % fps in two alternating sets of five fresh runs, unblended unchanged.
    """
    require_ort()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.dynamic_block_base", str(DYNAMIC_BLOCK_BASE))
    source = str(graph) if isinstance(graph, Path) else graph
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for a damaged file
        name = graph if isinstance(graph, (str, Path)) else "the graph"
        raise NStreamError(f"cannot load the ONNX graph {name}: {str(exc).splitlines()[0][:200]}") from None


def as_numpy(value: Any) -> np.ndarray:
    """A float32 array from an array or a (CPU) torch tensor, without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


class GraphEngine:
    """``infer(NCHW float32 0..255[, style]) -> NCHW float32`` through one ONNX graph on the CPU."""

    name = "onnxruntime"
    device = "cpu"

    def __init__(self, graph: bytes | str | Path, threads: int | None = None, precision: str = "fp32", *,
                 reason: str = "asked for") -> None:
        self.session: Any = cpu_session(graph, threads)
        self.precision = precision
        self.reason = reason
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.style_dim = int(inputs[STYLE].shape[-1]) if STYLE in inputs else None

    def infer(self, batch: Any, style: Any = None) -> np.ndarray:
        """NCHW in 0..255 to the same, as float32 arrays (a CPU tensor is read without importing torch)."""
        session = require_open(self.session, self.name)
        feeds = {INPUT: as_numpy(batch)}
        if self.style_dim is not None:
            if style is None:
                raise ValueError("this network is conditioned: infer() needs the style vector")
            feeds[STYLE] = as_numpy(style).reshape(1, self.style_dim)
        return session.run([OUTPUT], feeds)[0]

    def warmup(self, height: int, width: int) -> None:
        """One call at the working size, so the first frame does not pay for ONNX Runtime's first-run setup."""
        style = None if self.style_dim is None else np.zeros((1, self.style_dim), np.float32)
        self.infer(np.zeros((1, 3, height, width), np.float32), style)

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference); a second call does nothing."""
        self.session = None
