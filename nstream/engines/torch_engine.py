"""Eager PyTorch: the engine every other backend is checked against, and the fallback when none is present."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nstream.devices import pick_device
from nstream.engines.base import require_open, require_style, warmup_style
from nstream.engines.export import style_dim
from nstream.engines.precision import resolve_precision


class TorchEngine:
    """Eager PyTorch. On CUDA: fp16 weights and activations, channels_last memory layout."""

    name = "torch"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto", *,
                 reason: str = "asked for") -> None:
        self.device = pick_device(device)
        self.precision = resolve_precision(self.name, self.device, precision)
        self.reason = reason
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self.memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        self.model: nn.Module | None = model.to(self.device, self.dtype, memory_format=self.memory_format).eval()
        self.style_dim = style_dim(model)

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor | np.ndarray, style: torch.Tensor | np.ndarray | None = None
              ) -> torch.Tensor | np.ndarray:
        """NCHW in 0..255 to the same; a NumPy array in gives one back, a tensor a tensor."""
        model = require_open(self.model, self.name)
        numpy_in = isinstance(batch, np.ndarray)
        x = torch.from_numpy(batch) if numpy_in else batch
        x = x.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)
        if self.style_dim is None:
            y = model(x).float()
        else:
            y = model(x, require_style(style, self.style_dim).to(self.device, self.dtype)).float()
        return y.cpu().numpy() if numpy_in else y

    def warmup(self, height: int, width: int) -> None:
        """One call at the working size: cuDNN picks its kernels before the first real frame."""
        self.infer(torch.zeros(1, 3, height, width, device=self.device), warmup_style(self))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:
        """Let go of the model (the caller's module stays usable); a second call does nothing."""
        self.model = None
