"""``resolve_precision``: the one place that decides what ``--precision auto`` means, and what each engine runs.

PyTorch-free (the light install's ONNX Runtime engine asks it too). The table is per engine kind;
``auto`` is fp16 where a GPU runs it (TensorRT and torch2trt only run on one) and fp32 on a CPU,
where fp16 is slower and int8 is a trade the user chooses.
"""

from __future__ import annotations

from typing import Any

from nstream.engines import ENGINES, PRECISIONS
from nstream.errors import NStreamError

# Only int8 is ever missing from a kind's list, hence the one suggestion in resolve_precision.
# kind: (precisions it runs, what auto means on a CPU, what auto means on a CUDA GPU); None: it cannot run there
SUPPORTED: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "torch": (("fp32", "fp16"), "fp32", "fp16"),
    "onnxruntime": (("fp32", "fp16", "int8"), "fp32", "fp16"),
    "tensorrt": (("fp32", "fp16", "int8"), None, "fp16"),
    "torch2trt": (("fp32", "fp16"), None, "fp16"),
}


def device_type(device: Any) -> str:
    """``cpu`` or ``cuda`` from a torch.device or its name, without importing PyTorch."""
    return str(getattr(device, "type", device)).split(":")[0]


def resolve_precision(engine: str, device: Any, precision: str = "auto") -> str:
    """The precision ``engine`` runs on ``device`` for the ``precision`` asked for; a pair it cannot run is a user error.

    ``engine`` is a concrete kind (``auto`` is resolved to one first, by ``factory.auto_choice``).
    """
    if precision not in PRECISIONS:
        raise NStreamError(f"unknown --precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if engine not in SUPPORTED:
        raise NStreamError(f"unknown --engine {engine!r}: choose one of {', '.join(ENGINES)}")
    runs, on_cpu, on_gpu = SUPPORTED[engine]
    gpu = device_type(device) == "cuda"
    if precision == "auto":
        precision = on_gpu if gpu else on_cpu or on_gpu
    if precision not in runs:
        listed = f"{', '.join(runs[:-1])} or {runs[-1]}"
        raise NStreamError(f"the {engine} engine runs {listed}, not {precision!r}: use --engine onnxruntime for int8")
    if engine == "torch" and precision == "fp16" and not gpu:
        raise NStreamError("fp16 needs a CUDA GPU with the torch engine: use --precision fp32 on CPU")
    return precision
