"""A still camera: flow only where the picture changed, the history warped only where something moves.

A fixed camera (a webcam, a surveillance stream: what the live pipeline mostly sees) shows a still
scene with a few moving subjects, yet the blend computed a whole-frame flow and resampled the whole
history along it every frame. Two shortcuts, both falling back to the whole frame on a pan:

- :func:`changed_pixels`: where consecutive inputs differ (brightness flicker divided out, above the
  frame's own noise). Around those alone the flow is computed, at full size (the refinement of
  :mod:`nstream.temporal.refine`); elsewhere it is zero. When the boxes around the changes cover too
  much of the frame, the whole-frame flow runs as before. Outside the boxes the two inputs agree and
  nothing moved, so the blend's checks run only inside them and the frame is mixed in one uniform
  pass outside (:func:`nstream.temporal.blend.blend`); every ``CHECK_EVERY``-th frame a whole-frame
  flow at the working size must still find the scene still (:class:`StillCamera`).
- :func:`still_regions`: DIS finds a still part's flow to be a few hundredths of a pixel of noise
  (vtest.avi: 80 % of pixels below 0.05 px, 87 % below 0.1), and the bicubic warp along it was a
  fifth of the stage's CPU. Flow below ``STILL_PX`` is set to zero; :func:`warp_history` copies the
  history outside the boxes around what remains and resamples only inside. A bicubic sample at a
  whole-pixel offset is the pixel itself, so this equals a whole-frame warp of the snapped flow (tested).

A slow pan moves every pixel by a little: where the frame's median motion is not below half of
``STILL_PX``, nothing is snapped (a history that lags a pan by a fraction of a pixel every frame
smears), and where the boxes would cover most of the frame, one whole-frame warp is cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nstream.temporal.brightness import match_brightness
from nstream.temporal.occlusion import speed_sq
from nstream.temporal.warp import identity_grid

STILL_PX = 0.1  # full-size pixels per frame: slower than this is the flow's noise on a still scene
TILE = 16  # full-size pixels: moving pixels are gathered into tiles of this side before boxing
CHANGE_LEVELS = 6  # grey levels: a smaller difference between consecutive frames is not a change
NOISE_FACTOR = 4  # ... nor one within this many times the frame's median difference (film grain, sensor noise)
MAX_CHANGED = 0.3  # a still camera: at most this share of the frame changes
# full-size pixels of context around a change (the refinement's boxes around moving flow have 12): DIS
# starts from zero there, and a person's change region is its outline, not its motion (vtest
# camera-style, E_warp on moving pixels: -56.3 % at 12, -57.0 at 16, -57.7 at 24, -58.0 at 32)
CHANGE_MARGIN = 24
MAX_SHARE = 0.6  # above this share of the frame in boxes, one whole-frame warp
CHECK_EVERY = 4  # a still camera gets a whole-frame flow every this many frames


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in full-size pixels


class StillCamera:
    """Whether a stream's camera is still, as its whole-frame flows last found: the change-only flow
    may stand in for them only while one confirmed it, and for at most ``CHECK_EVERY`` - 1 frames in a
    row. A frame difference alone cannot tell: a slow pan over flat colours changes few pixels but
    moves every stroke of the stylized picture (bigbuckbunny, bikes: 4 points of E_warp lost)."""

    def __init__(self, check_every: int = CHECK_EVERY) -> None:
        self.check_every = check_every
        self.confirmed = False  # the last whole-frame flow found the scene still
        self.since = 0  # frames since that flow

    def may_skip(self) -> bool:
        """May this frame's flow be the change-only one?"""
        return self.confirmed and self.since < self.check_every - 1

    def skipped(self) -> None:
        self.since += 1

    def checked(self, still: bool) -> None:
        """A whole-frame flow ran; ``still``: it found the scene still (:func:`still_regions` snapped it)."""
        self.confirmed, self.since = still, 0


@dataclass
class Still:
    """Where the blend keeps the flow: ``moving`` (full-size uint8, 1 = kept) is 0 outside ``boxes``."""

    boxes: list[Box]
    moving: np.ndarray


def changed_pixels(current: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
    """uint8 mask (1 = changed) of two grey frames: their 3x3 mean absolute difference, the global
    brightness change divided out, above ``CHANGE_LEVELS`` or ``NOISE_FACTOR`` times its median (grain);
    None where more than ``MAX_CHANGED`` of the frame passes ``CHANGE_LEVELS`` (a pan: not a still camera,
    and its large median difference is motion, not grain)."""
    difference = cv2.blur(cv2.absdiff(current, match_brightness(previous, current)), (3, 3))
    sample = difference[::2, ::2]
    if np.count_nonzero(sample > CHANGE_LEVELS) > MAX_CHANGED * sample.size:
        return None
    level = max(CHANGE_LEVELS, NOISE_FACTOR * float(np.median(sample)))
    return (difference > level).astype(np.uint8)


def _slow(squared: np.ndarray, limit: float) -> bool:
    """The frame's median motion (``squared``: its squared speeds) is under half of ``limit``: not a pan, however slow."""
    return float(np.median(squared[::2, ::2])) < (limit / 2) ** 2


def scene_is_still(flow: np.ndarray, width: int) -> bool:
    """Does the working-size ``flow`` of a ``width``-pixel-wide frame find the scene still (see :func:`still_regions`)?"""
    return _slow(speed_sq(flow), STILL_PX * flow.shape[1] / width)


def snap(flow: np.ndarray, limit: float = STILL_PX) -> np.ndarray:
    """``flow`` (changed in place) with vectors shorter than ``limit`` set to zero: a still scene's noise."""
    flow *= (speed_sq(flow) >= limit * limit)[..., None]
    return flow


def still_regions(flow: np.ndarray, height: int, width: int) -> Still | None:
    """Snap the working-size ``flow`` (HxWx2, in working-size pixels) to zero where the scene is still, in
    place; return where it still moves at full size, or None to warp the whole frame (a pan, or motion
    almost everywhere)."""
    limit = STILL_PX * flow.shape[1] / width  # in working-size pixels
    squared = speed_sq(flow)
    if not _slow(squared, limit):
        return None
    moving = (squared >= limit * limit).astype(np.uint8)
    # one working pixel of margin: the upscaled flow interpolates into the pixels next to a moving one
    moving = cv2.dilate(moving, np.ones((3, 3), np.uint8))
    flow *= moving[..., None]
    moving = cv2.resize(moving, (width, height), interpolation=cv2.INTER_NEAREST)
    rows, cols = -(-height // TILE), -(-width // TILE)
    padded = np.zeros((rows * TILE, cols * TILE), np.uint8)
    padded[:height, :width] = moving
    # two contiguous maxima: 10x faster than one over axes (1, 3)
    tiles = padded.reshape(rows, TILE, cols * TILE).max(axis=1).reshape(rows, cols, TILE).max(axis=2)
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
    identity = identity_grid(*full.shape[:2])
    for box in still.boxes:
        x0, y0, x1, y1 = box
        kept = still.moving[y0:y1, x0:x1]
        flow = cv2.multiply(full[y0:y1, x0:x1], cv2.merge([kept, kept]), dtype=cv2.CV_32F)  # 3x NumPy's speed
        patches.append((box, *cv2.convertMaps(cv2.add(identity[y0:y1, x0:x1], flow), None, cv2.CV_16SC2)))
    return patches


def warp_history(history: np.ndarray, patches: list[tuple[Box, np.ndarray, np.ndarray]]) -> np.ndarray:
    """``history`` warped bicubically inside the patches' boxes, copied elsewhere (its flow is zero there)."""
    warped = history.copy()
    for (x0, y0, x1, y1), map1, map2 in patches:
        warped[y0:y1, x0:x1] = cv2.remap(history, map1, map2, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return warped
