"""Backward warping: pull pixels of one frame into another frame's grid along a flow field.

Backward (gather) rather than forward (scatter) warping leaves no holes: every output pixel
reads one bilinear sample. Pixels that the flow sends outside the image read the nearest edge
pixel (border replicate); the occlusion mask is what says whether to trust them.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from nstream.errors import NStreamError


@lru_cache(maxsize=8)
def identity_grid(height: int, width: int) -> np.ndarray:
    """HxWx2 float32 (x, y) of every pixel; cached, since every frame of a stream has one size."""
    grid = np.empty((height, width, 2), np.float32)
    grid[..., 0] = np.arange(width, dtype=np.float32)
    grid[..., 1] = np.arange(height, dtype=np.float32)[:, None]
    grid.flags.writeable = False
    return grid


def sampling_map(flow: np.ndarray) -> np.ndarray:
    """Absolute HxWx2 float32 sample coordinates (x + u, y + v): ``cv2.remap``'s map1, with no map2."""
    return cv2.add(identity_grid(*flow.shape[:2]), flow.astype(np.float32, copy=False))


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """``out(x) = image(x + flow(x))``, so ``warp(b, flow(a, b)) ≈ a``.

    ``image`` is HxW or HxWxC, uint8 or float; the result has the same shape and dtype.
    ``flow`` is HxWx2 (u, v) in pixels, on the grid of the frame being reconstructed.
    ``cubic`` samples bicubically instead of bilinearly: bilinear sampling blurs at sub-pixel
    offsets, which adds up when an image is warped again and again (the blend's history).
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise NStreamError(f"flow must be HxWx2, got shape {tuple(flow.shape)}")
    if image.shape[:2] != flow.shape[:2]:
        raise NStreamError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    return warp_to(image, sampling_map(flow), cubic)


def warp_to(image: np.ndarray, coordinates: np.ndarray, cubic: bool = False) -> np.ndarray:
    """:func:`warp` with the sample coordinates already made (:func:`sampling_map`), for callers
    that need them for something else too."""
    mode = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    dtype = image.dtype
    # remap handles uint8/uint16/int16/float32/float64 and at most 4 channels per call.
    src = image if dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64) else image.astype(np.float32)
    if src.ndim == 3 and src.shape[2] > 4:
        parts = [cv2.remap(np.ascontiguousarray(src[..., i:i + 4]), coordinates, None, mode,
                           borderMode=cv2.BORDER_REPLICATE) for i in range(0, src.shape[2], 4)]
        out = np.concatenate([p if p.ndim == 3 else p[..., None] for p in parts], axis=2)
    else:
        out = cv2.remap(np.ascontiguousarray(src), coordinates, None, mode, borderMode=cv2.BORDER_REPLICATE)
        if src.ndim == 3 and out.ndim == 2:  # cv2 drops a single channel axis
            out = out[..., None]
    return out.astype(dtype, copy=False)
