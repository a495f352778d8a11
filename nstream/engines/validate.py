"""The PSNR gate: every built or quantized engine is compared with PyTorch fp32 before it is used.

Both outputs are clamped to 0..255 first, as the stylizer does: differences the viewer can
never see (outside the displayable range) do not count.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from nstream.errors import NStreamError

THRESHOLDS = {"fp32": 40.0, "fp16": 40.0, "int8": 30.0}


def psnr(reference: np.ndarray, output: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of ``output`` against ``reference`` (inf when identical)."""
    return _db(mse(reference, output, peak), peak)


def mse(reference: np.ndarray, output: np.ndarray, peak: float = 255.0) -> float:
    """Mean squared error after clamping both to the displayable 0..peak range."""
    if reference.shape != output.shape:
        raise NStreamError(f"engine output shape {output.shape} differs from PyTorch's {reference.shape}")
    ref = np.clip(reference.astype(np.float64), 0, peak)
    out = np.clip(output.astype(np.float64), 0, peak)
    return float(np.mean((ref - out) ** 2))


def _db(error: float, peak: float = 255.0) -> float:
    return math.inf if error == 0 else 10.0 * math.log10(peak * peak / error)


@torch.inference_mode()
def torch_reference(model: nn.Module, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """PyTorch fp32 on CPU: the ground truth every backend is measured against."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    return [net(torch.from_numpy(frame)).numpy() for frame in frames]


def check_engine(run: Callable[[np.ndarray], np.ndarray], references: Sequence[np.ndarray],
                 frames: Sequence[np.ndarray], precision: str, what: str) -> float:
    """PSNR of ``run`` against the references over the whole held-out set; refuses the engine below the threshold.

    The set's PSNR (from the mean squared error over all frames) is what is gated, as is usual;
    a single near-flat frame, which instance normalization amplifies, does not decide alone.
    """
    threshold = THRESHOLDS.get(precision, 40.0)
    squared = [mse(ref, run(frame)) for ref, frame in zip(references, frames, strict=True)]
    score = _db(float(np.mean(squared)))
    if score < threshold:
        raise NStreamError(f"{what} differs from PyTorch fp32: PSNR {score:.1f} dB on held-out frames, below the "
                           f"{threshold:.0f} dB a {precision} engine must reach; refusing it (try another --precision)")
    return score
