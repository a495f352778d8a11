"""Temporal consistency of a render, measured: the warping error E_warp (Lai et al. 2018).

E_warp = mean over frame pairs of the mean, over pixels the flow can be trusted on, of
(O_t - warp(O_{t+1}, flow(x_t, x_{t+1})))^2, with outputs in [0, 1]. The flow is computed on the
*input* frames with a different method from the one the render used (Farneback by default, DIS
renders), or the number would flatter the render.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def warp_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray], flow: str = "farneback") -> float:
    """E_warp of uint8 RGB ``outputs`` against the motion of same-sized uint8 RGB ``inputs``."""
    from nstream.temporal import create_flow, reliability_mask, warp

    if len(outputs) != len(inputs) or len(outputs) < 2:
        raise ValueError("warp_error needs two or more output frames, one per input frame")
    backend = create_flow(flow)
    errors = []
    for t in range(len(outputs) - 1):
        forward, backward = backend(inputs[t], inputs[t + 1]), backend(inputs[t + 1], inputs[t])
        mask = reliability_mask(forward, backward)
        if mask.sum() == 0:
            continue
        now = outputs[t].astype(np.float32) / 255.0
        following = warp(outputs[t + 1].astype(np.float32) / 255.0, forward)
        errors.append(float((((now - following) ** 2).mean(axis=2) * mask).sum() / mask.sum()))
    return float(np.mean(errors)) if errors else 0.0
