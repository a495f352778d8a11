"""Where nothing moves: the flow taken as zero there, and the history warped only where something moves.

A fixed camera (a webcam, a surveillance stream: what the live pipeline mostly sees) shows a still
scene with a few moving subjects. DIS finds the still part's flow to be a few hundredths of a pixel
of noise (vtest.avi: 80 % of pixels below 0.05 px, 87 % below 0.1), yet the blend resampled the whole
history along it every frame: the bicubic warp was a fifth of the temporal stage's CPU. Flow below
``STILL_PX`` is camera noise, so :func:`still_regions` sets it to zero and finds the boxes around
what remains; :func:`warp_history` copies the history outside them and resamples only inside. A
bicubic sample at a whole-pixel offset is the pixel itself, so inside and outside agree exactly
with a whole-frame warp of the snapped flow (tested).

A slow pan moves every pixel by a little: where the frame's median motion is not below half of
``STILL_PX``, nothing is snapped (a history that lags a pan by a fraction of a pixel every frame
smears), and where the boxes would cover most of the frame, one whole-frame warp is cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STILL_PX = 0.1  # full-size pixels per frame: slower than this is the flow's noise on a still scene
TILE = 16  # full-size pixels: moving pixels are gathered into tiles of this side before boxing
MAX_SHARE = 0.6  # above this share of the frame in boxes, one whole-frame warp


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in full-size pixels


@dataclass
class Still:
    """Where the blend keeps the flow: ``moving`` (full-size uint8, 1 = kept) is 0 outside ``boxes``."""

    boxes: list[Box]
    moving: np.ndarray


def still_regions(flow: np.ndarray, height: int, width: int) -> Still | None:
    """Snap the working-size ``flow`` (HxWx2, in working-size pixels) to zero where the scene is still, in
    place; return where it still moves at full size, or None to warp the whole frame (a pan, or motion
    almost everywhere)."""
    scale = flow.shape[1] / width  # working-size pixels per full-size pixel
    limit = STILL_PX * scale
    speed_sq = flow[..., 0] * flow[..., 0] + flow[..., 1] * flow[..., 1]
    if float(np.median(speed_sq[::2, ::2])) >= (limit / 2) ** 2:
        return None
    moving = (speed_sq >= limit * limit).astype(np.uint8)
    # one working pixel of margin: the upscaled flow interpolates into the pixels next to a moving one
    moving = cv2.dilate(moving, np.ones((3, 3), np.uint8))
    flow *= moving[..., None]
    moving = cv2.resize(moving, (width, height), interpolation=cv2.INTER_NEAREST)
    rows, cols = -(-height // TILE), -(-width // TILE)
    padded = np.zeros((rows * TILE, cols * TILE), np.uint8)
    padded[:height, :width] = moving
    tiles = padded.reshape(rows, TILE, cols, TILE).max(axis=(1, 3))
    if tiles.mean() > MAX_SHARE:
        return None
    count, _, stats, _ = cv2.connectedComponentsWithStats(tiles, connectivity=8)
    boxes = [(int(x) * TILE, int(y) * TILE, min(width, int(x + w) * TILE), min(height, int(y + h) * TILE))
             for x, y, w, h, _ in stats[1:count]]
    return Still(boxes, moving)


def box_maps(full: np.ndarray, still: Still) -> list[tuple[Box, np.ndarray, np.ndarray]]:
    """Fixed-point ``cv2.remap`` maps (absolute coordinates) of the full-size flow ``full`` inside each
    box, zero where ``still.moving`` is 0."""
    patches = []
    for box in still.boxes:
        x0, y0, x1, y1 = box
        coordinates = full[y0:y1, x0:x1] * still.moving[y0:y1, x0:x1, None]
        coordinates[..., 0] += np.arange(x0, x1, dtype=np.float32)
        coordinates[..., 1] += np.arange(y0, y1, dtype=np.float32)[:, None]
        patches.append((box, *cv2.convertMaps(coordinates, None, cv2.CV_16SC2)))
    return patches


def warp_history(history: np.ndarray, patches: list[tuple[Box, np.ndarray, np.ndarray]]) -> np.ndarray:
    """``history`` warped bicubically inside the patches' boxes, copied elsewhere (its flow is zero there)."""
    warped = history.copy()
    for (x0, y0, x1, y1), map1, map2 in patches:
        warped[y0:y1, x0:x1] = cv2.remap(history, map1, map2, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return warped
