"""A global brightness change divided out, before two consecutive frames are compared.

A flickering or fading input (old film, auto-exposure) must not look like motion or a failed flow
everywhere: the photometric check of the blend and the still camera's change detection both
compare a frame with the one before it after this.
"""

from __future__ import annotations

import cv2
import numpy as np


def brightness_gains(image: np.ndarray, reference: np.ndarray) -> tuple[float, ...] | None:
    """Per-channel gains that bring ``image``'s means to ``reference``'s; None when they are all ~1."""
    ours, theirs = cv2.mean(image), cv2.mean(reference)
    channels = 1 if image.ndim == 2 else image.shape[2]
    gains = tuple(theirs[c] / ours[c] if ours[c] > 1.0 else 1.0 for c in range(channels))
    return None if max(abs(g - 1.0) for g in gains) < 0.005 else gains


def apply_gains(image: np.ndarray, gains: tuple[float, ...] | None) -> np.ndarray:
    """``image`` (uint8) scaled per channel by :func:`brightness_gains`' answer."""
    if gains is None:
        return image
    return cv2.multiply(image, gains[0] if len(gains) == 1 else gains + (1.0,) * (4 - len(gains)), dtype=cv2.CV_8U)


def match_brightness(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` scaled per channel to ``reference``'s mean (uint8): a global flicker divided out."""
    return apply_gains(image, brightness_gains(image, reference))
