"""torch2trt: optional, converts the module directly (one fixed shape per conversion).

torch2trt turns ReflectionPad2d into zero padding unless its plugin library loads, which
darkens frame edges; so every conversion is compared with PyTorch and refused when it differs.

NOT VERIFIED: torch2trt and TensorRT are absent on every machine of this project; tests skip.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from nstream.devices import pick_device
from nstream.engines.base import require_open
from nstream.engines.precision import resolve_precision
from nstream.engines.validate import THRESHOLDS, psnr
from nstream.errors import NStreamError


def import_torch2trt() -> Any:
    """torch2trt's converter, or one line saying how to get it."""
    try:
        from torch2trt import torch2trt
    except ImportError:
        raise NStreamError("torch2trt is not installed: pip install 'nstream[torch2trt]' (needs TensorRT and a GPU), "
                           "or use --engine tensorrt/onnxruntime") from None
    return torch2trt


class Torch2TRTEngine:
    """One converted module per input shape, each checked against PyTorch fp32 on first use."""

    name = "torch2trt"

    def __init__(self, model: nn.Module, device: str | torch.device = "auto", precision: str = "auto", *,
                 reason: str = "asked for") -> None:
        if getattr(model, "style_dim", None) is not None:
            raise NStreamError("torch2trt converts one-style networks only: use --engine tensorrt for conditioned "
                               "networks (paintings, tf26 styles), whose style vector is an input")
        self.convert = import_torch2trt()
        self.device = pick_device(device)
        if self.device.type != "cuda":
            raise NStreamError("the torch2trt engine needs a CUDA GPU: use --engine onnxruntime on CPU")
        self.precision = resolve_precision(self.name, self.device, precision)
        self.reason = reason
        self.model: nn.Module | None = copy.deepcopy(model).to(self.device, torch.float32).eval()
        self.converted: dict[tuple[int, ...], Any] = {}
        self.psnr = float("nan")

    @torch.inference_mode()
    def _converted(self, shape: tuple[int, ...]) -> Any:
        """The module converted for ``shape`` (converting and checking it the first time it is seen)."""
        model = require_open(self.model, self.name)
        if shape not in self.converted:
            sample = torch.rand(shape, device=self.device, generator=torch.Generator(self.device).manual_seed(0)) * 255
            module = self.convert(model, [sample], fp16_mode=self.precision == "fp16")
            score = psnr(model(sample).cpu().numpy(), module(sample).float().cpu().numpy())
            if score < THRESHOLDS[self.precision]:
                raise NStreamError(f"torch2trt's conversion differs from PyTorch (PSNR {score:.1f} dB; reflection padding "
                                   "lost without its plugin library?): refusing it, use --engine tensorrt")
            self.psnr = score if self.psnr != self.psnr else min(self.psnr, score)
            self.converted[shape] = module
        return self.converted[shape]

    def infer(self, batch: Any, style: Any = None) -> Any:
        """NCHW in 0..255 to the same; a NumPy array in gives one back (copied to and from the GPU)."""
        if not isinstance(batch, torch.Tensor):
            return self.infer(torch.from_numpy(batch)).cpu().numpy()
        x = batch.detach().to(self.device, torch.float32).contiguous()
        return self._converted(tuple(x.shape))(x).float()

    def warmup(self, height: int, width: int) -> None:
        """Converts (and checks) for the working size now rather than on the first frame."""
        self.infer(torch.zeros(1, 3, height, width, device=self.device))
        torch.cuda.synchronize(self.device)

    def close(self) -> None:
        """Drop the converted modules and the model copy (their TensorRT engines go with them); idempotent."""
        self.converted.clear()
        self.model = None
