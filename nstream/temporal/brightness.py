"""A global brightness change divided out, before two consecutive frames are compared.

A flickering or fading input (old film, auto-exposure) must not look like motion or a failed flow
everywhere: the photometric check of the blend and the still camera's change detection both
compare a frame with the one before it after this.
"""

from __future__ import annotations

import cv2
import numpy as np


def match_brightness(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` scaled per channel to ``reference``'s mean (uint8): a global flicker divided out."""
    ours, theirs = cv2.mean(image), cv2.mean(reference)
    channels = 1 if image.ndim == 2 else image.shape[2]
    gains = [theirs[c] / ours[c] if ours[c] > 1.0 else 1.0 for c in range(channels)]
    if max(abs(g - 1.0) for g in gains) < 0.005:
        return image
    return cv2.multiply(image, gains[0] if channels == 1 else tuple(gains) + (1.0,) * (4 - channels), dtype=cv2.CV_8U)
