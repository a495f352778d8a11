"""Finer flow where something moves: full-size DIS on the boxes around moving subjects.

The blend's DIS runs on a downscaled frame (see :mod:`nstream.temporal.flow`): enough for a pan or
a static street, too coarse for a walking person, whose limbs move differently from the torso a
few pixels away. Its warp then fails the photometric check, the mask leaves the person out, and the
flicker stays exactly where viewers look (vtest.avi, pedestrians: E_warp on moving pixels -47 %
against -58 % on the whole frame; full-size DIS everywhere: -63 % and -69 %, at 2.7x the CPU).

:func:`refine_moving` keeps the coarse flow for the frame and recomputes it at full size inside
the bounding boxes of the regions the coarse flow finds moving, where the scene holds few
enough of them that this stays cheap (``MAX_AREA``); a pan moves everything, and the coarse
flow serves it well, so it is left as it is. Measured in docs/BENCHMARKS.md ("Moving subjects").
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_MOTION = 0.5  # working-size pixels per frame: below this, a region is not "moving"
MAX_AREA = 0.3  # refine only while the boxes cover at most this share of the frame
MARGIN = 12  # full-size pixels of context around each box (DIS's patches need their neighbourhood)
MIN_BOX = 24  # full-size pixels: smaller regions are noise in the coarse flow


def moving_boxes(flow: np.ndarray, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Full-size (x0, y0, x1, y1) boxes around the moving regions of a working-size ``flow``, or none
    when they would cover more than ``MAX_AREA`` of the frame."""
    moving = ((flow[..., 0] ** 2 + flow[..., 1] ** 2) > MIN_MOTION * MIN_MOTION).astype(np.uint8)
    return boxes_around(moving, height, width) or []


def boxes_around(mask: np.ndarray, height: int, width: int, margin: int = MARGIN) -> list[tuple[int, int, int, int]] | None:
    """Full-size boxes (with ``margin``) around the regions of a working-size uint8 ``mask``, regions
    smaller than ``MIN_BOX`` left out; None when the boxes would cover more than ``MAX_AREA``."""
    small_h, small_w = mask.shape[:2]
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    sx, sy = width / small_w, height / small_h
    boxes, area = [], 0
    for x, y, w, h, _ in stats[1:count]:
        if w * sx < MIN_BOX and h * sy < MIN_BOX:
            continue
        x0, y0 = max(0, int(x * sx) - margin), max(0, int(y * sy) - margin)
        x1, y1 = min(width, int((x + w) * sx) + margin), min(height, int((y + h) * sy) + margin)
        boxes.append((x0, y0, x1, y1))
        area += (x1 - x0) * (y1 - y0)
    return boxes if area <= MAX_AREA * height * width else None


def refine_moving(flow: np.ndarray, current_grey: np.ndarray, previous_grey: np.ndarray, dis: cv2.DISOpticalFlow,
                  full: np.ndarray) -> int:
    """Recompute ``full`` (the coarse ``flow`` upscaled to the frame's size, HxWx2, changed in place) with
    ``dis`` at full size inside :func:`moving_boxes`, starting from the coarse flow; returns the boxes'
    pixel count (0: nothing refined)."""
    height, width = current_grey.shape[:2]
    return refine_boxes(moving_boxes(flow, height, width), current_grey, previous_grey, dis, full)


def refine_boxes(boxes: list[tuple[int, int, int, int]], current_grey: np.ndarray, previous_grey: np.ndarray,
                 dis: cv2.DISOpticalFlow, full: np.ndarray) -> int:
    """Full-size DIS inside each box, starting from ``full`` there (changed in place); the pixels refined."""
    done = 0
    for x0, y0, x1, y1 in boxes:
        if x1 - x0 < 16 or y1 - y0 < 16:
            continue
        start = np.ascontiguousarray(full[y0:y1, x0:x1])
        full[y0:y1, x0:x1] = dis.calc(np.ascontiguousarray(current_grey[y0:y1, x0:x1]),
                                      np.ascontiguousarray(previous_grey[y0:y1, x0:x1]), start)
        done += (x1 - x0) * (y1 - y0)
    return done
