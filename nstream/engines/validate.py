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
def torch_reference(model: nn.Module, frames: Sequence[np.ndarray],
                    styles: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """PyTorch fp32 on CPU: the ground truth every backend is measured against (a conditioned network
    stylizes frame i with ``styles[i]``)."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    styles = styles if styles is not None else [None] * len(frames)
    return [net(*inputs(frame, style)).numpy() for frame, style in zip(frames, styles, strict=True)]


def inputs(frame: np.ndarray, style: np.ndarray | None) -> tuple[torch.Tensor, ...]:
    """The network's arguments: the frame, and the style vector where there is one."""
    x = torch.from_numpy(frame)
    return (x,) if style is None else (x, torch.from_numpy(style))


def check_engine(run: Callable[..., np.ndarray], references: Sequence[np.ndarray],
                 frames: Sequence[np.ndarray], precision: str, what: str,
                 styles: Sequence[np.ndarray | None] | None = None) -> float:
    """PSNR of ``run`` against the references over the whole held-out set; refuses the engine below the threshold.

    ``run(frame)``, or ``run(frame, style)`` for a conditioned network. The set's PSNR (from the mean
    squared error over all frames) is what is gated, as is usual; a single near-flat frame, which
    instance normalization amplifies, does not decide alone.
    """
    threshold = THRESHOLDS.get(precision, 40.0)
    styles = styles if styles is not None else [None] * len(frames)
    squared = [mse(ref, run(frame) if style is None else run(frame, style))
               for ref, frame, style in zip(references, frames, styles, strict=True)]
    score = _db(float(np.mean(squared)))
    if score < threshold:
        raise NStreamError(f"{what} differs from PyTorch fp32: PSNR {score:.1f} dB on held-out frames, below the "
                           f"{threshold:.0f} dB a {precision} engine must reach; refusing it (try another --precision)")
    return score
