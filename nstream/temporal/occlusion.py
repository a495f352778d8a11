"""Where a flow can be trusted: the forward–backward consistency and motion-boundary checks.

Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos" (2016), eq. 5 and 6. The
mask lives on the grid of the frame the *forward* flow starts from. With two frames ``a`` and
``b`` and

    forward  = flow(a, b)   (for each pixel of a: where it is in b)
    backward = flow(b, a)   (for each pixel of b: where it is in a)

``reliability_mask(forward, backward)`` is an HxW mask over **a**: 1 where ``warp(b, forward)``
is a trustworthy reconstruction of ``a``, 0 where the pixel of ``a`` is occluded in ``b``
(disoccluded, seen from b) or sits on a motion boundary. For the live blend, a is the new input
frame x_t and b the previous one x_{t-1}, so the mask says which pixels of the warped previous
output may be blended into frame t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nstream.errors import NStreamError
from nstream.temporal.warp import sampling_map, warp_to


@dataclass(frozen=True)
class Tolerances:
    """The constants of the two checks (flows in pixels); the defaults are Ruder et al.'s."""

    consistency_scale: float = 0.01
    consistency_offset: float = 0.5
    boundary_scale: float = 0.01
    boundary_offset: float = 0.002


RUDER = Tolerances()
# Ruder's constants suit the accurate flows of the paper (DeepFlow, EpicFlow). With DIS they drop
# pixels whose flow is good enough (the warp checks out): the live blend on bikes.mp4 kept 70 % of
# its error in the 12 % of pixels they dropped; an offline render of carphone 55 % in 5 %.
LOOSE = Tolerances(consistency_offset=8.0, boundary_scale=0.05, boundary_offset=0.2)
TOLERANCES = {"ruder": RUDER, "loose": LOOSE}


def reliability_mask(forward: np.ndarray, backward: np.ndarray | None, outside: bool = True,
                     tolerances: Tolerances = RUDER) -> np.ndarray:
    """float32 HxW mask over the forward flow's source frame: 1 = reliable, 0 = occluded or motion boundary.

    Forward–backward check: follow ``forward`` (w^) into the other frame and read ``backward``
    there (w~ = backward warped back); a consistent pair cancels, so a pixel fails where
    |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5. Motion boundary: the flow's own gradient is large,
    |grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002. ``tolerances`` replaces those constants
    (the live blend's fast, downscaled flow needs looser ones: see :mod:`nstream.temporal.blend`).

    ``outside`` (default on) also marks pixels whose forward flow leaves the other frame: the
    warp can only replicate the border for them, and the forward–backward check cannot see it
    (it reads the replicated border of the backward flow, which agrees). Pass False for the two
    checks alone.

    ``backward=None`` skips the forward–backward check (motion boundaries and frame exits only): the
    live blend's default, which saves the second flow and lets a photometric check find occlusions
    (see :mod:`nstream.temporal.blend`).
    """
    if forward.ndim != 3 or forward.shape[2] != 2 or (backward is not None and backward.shape != forward.shape):
        shapes = f"forward {tuple(forward.shape)}" + ("" if backward is None else f" and backward {tuple(backward.shape)}")
        raise NStreamError(f"{shapes}: flows must be HxWx2 and of one size")
    w_hat = forward.astype(np.float32, copy=False)
    target = sampling_map(w_hat)  # where each pixel of a lands in b
    hat_sq = speed_sq(w_hat)
    tol = tolerances
    unreliable = motion_boundaries(w_hat, tol, hat_sq)
    if backward is not None:
        w_tilde = warp_to(backward.astype(np.float32, copy=False), target)
        unreliable |= speed_sq(w_tilde + w_hat) > tol.consistency_scale * (speed_sq(w_tilde) + hat_sq) + tol.consistency_offset
    if outside:
        unreliable |= leaves_frame(target, *w_hat.shape[:2])
    return (~unreliable).astype(np.float32)


def speed_sq(flow: np.ndarray) -> np.ndarray:
    """u^2 + v^2 of an HxWx2 flow (NumPy's sum over a length-2 axis is slow)."""
    return flow[..., 0] * flow[..., 0] + flow[..., 1] * flow[..., 1]


def leaves_frame(target: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean: the sample coordinates ``target`` (HxWx2, x then y) that fall outside a ``height`` x ``width``
    frame, where a warp can only replicate its border."""
    target_x, target_y = target[..., 0], target[..., 1]
    return (target_x < -0.5) | (target_x > width - 0.5) | (target_y < -0.5) | (target_y > height - 0.5)


def motion_boundaries(flow: np.ndarray, tolerances: Tolerances = RUDER, squared_speed: np.ndarray | None = None) -> np.ndarray:
    """Boolean HxW: where the float32 ``flow``'s own gradient is large, |grad u|^2 + |grad v|^2 >
    ``boundary_scale`` |w|^2 + ``boundary_offset`` (``squared_speed``: |w|^2, when the caller has it)."""
    if squared_speed is None:
        squared_speed = speed_sq(flow)
    grad_sq = np.zeros(flow.shape[:2], np.float32)
    for channel in range(2):
        dy, dx = np.gradient(flow[..., channel])
        grad_sq += dx * dx + dy * dy
    return grad_sq > tolerances.boundary_scale * squared_speed + tolerances.boundary_offset
