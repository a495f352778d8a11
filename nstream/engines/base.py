"""The engine interface and the eager PyTorch engine every other backend is checked against.

An engine maps an NCHW float batch in 0..255 to an NCHW float batch of the same size (a NumPy
array in gives an array back, as the stylizer uses them; a torch tensor a tensor, as benchmarks
on a GPU do); the stylizer pads frames to a multiple of 4 before calling it. A conditioned
network (one network, many styles) also takes the (1, D) style vector: an input, never baked
into the engine, so switching and morphing styles needs no new engine. Backends differ only in
how fast.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from nstream.engines import ENGINES, PRECISIONS  # noqa: F401 - re-exported here for the engines
from nstream.engines.export import style_dim
from nstream.errors import NStreamError


class Engine(Protocol):
    """What the stylizer and the dashboard rely on; ``reason`` says why ``auto`` chose it."""

    name: str
    precision: str
    device: torch.device
    reason: str

    def infer(self, batch: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor: ...

    def warmup(self, height: int, width: int) -> None: ...


def require_style(style: torch.Tensor | np.ndarray | None, dim: int) -> torch.Tensor:
    """A conditioned network's style input as (1, D) float; a missing or misshapen one is a bug upstream."""
    if style is None:
        raise ValueError("this network is conditioned: infer() needs the style vector")
    style = torch.as_tensor(style, dtype=torch.float32).reshape(1, -1)
    if style.shape[1] != dim:
        raise ValueError(f"style vector of {style.shape[1]} numbers for a network that takes {dim}")
    return style


def warmup_style(engine: Engine) -> torch.Tensor | None:
    """Any valid style input for a warm-up call (zeros of the right length), None for one-style networks."""
    dim = getattr(engine, "style_dim", None)
    return None if dim is None else torch.zeros(1, dim)


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` means the GPU when PyTorch sees one; a CUDA request without one is a user error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NStreamError("--device cuda asked for, but PyTorch sees no CUDA GPU: use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise NStreamError(f"unknown device {name!r}: use auto, cpu or cuda") from None


class TorchEngine:
    """Eager PyTorch. On CUDA: fp16 weights and activations, channels_last memory layout."""

    name = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto") -> None:
        self.device = pick_device(device)
        if precision == "auto":
            precision = "fp16" if self.device.type == "cuda" else "fp32"
        if precision not in ("fp32", "fp16"):
            raise NStreamError(f"the torch engine runs fp32 or fp16, not {precision!r}: use --engine onnxruntime for int8")
        if precision == "fp16" and self.device.type != "cuda":
            raise NStreamError("fp16 needs a CUDA GPU with the torch engine: use --precision fp32 on CPU")
        self.precision = precision
        self.reason = "asked for"
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.model = model.to(self.device, self.dtype, memory_format=self.memory_format).eval()
        self.style_dim = style_dim(model)

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor | np.ndarray, style: torch.Tensor | np.ndarray | None = None
              ) -> torch.Tensor | np.ndarray:
        """NCHW in 0..255 to the same; a NumPy array in gives one back, a tensor a tensor."""
        numpy_in = isinstance(batch, np.ndarray)
        x = torch.from_numpy(batch) if numpy_in else batch
        x = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)
        if self.style_dim is None:
            y = self.model(x).float()
        else:
            y = self.model(x, require_style(style, self.style_dim).to(self.device, self.dtype)).float()
        return y.cpu().numpy() if numpy_in else y

    def warmup(self, height: int, width: int) -> None:
        self.infer(torch.zeros(1, 3, height, width, device=self.device), warmup_style(self))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
