"""Colour preservation (Gatys et al. 2016, "Preserving color in neural artistic style transfer").

Stylize the luminance only: the result keeps the stylized picture's Y and takes the content's
chroma. One function serves the live stylizer and the offline optimizer; it is NumPy alone, so
the light install (no PyTorch) runs it too.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601, full range (JPEG): RGB -> Y, Cb, Cr and back
_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR).astype(np.float32)


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB (0..255) to Y, Cb, Cr with the chroma centred on 128."""
    out = image.astype(np.float32) @ _TO_YCBCR.T
    out[..., 1:] += 128.0
    return out


def ycbcr_to_rgb(image: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_ycbcr` (float32, not clipped)."""
    shifted = image.astype(np.float32).copy()
    shifted[..., 1:] -= 128.0
    return shifted @ _FROM_YCBCR.T


def preserve_colors(styled: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The stylized luminance with the content's colours: float32 RGB clipped to 0..255.

    Both inputs are H x W x 3 RGB in 0..255 (uint8 or float); the caller rounds when it stores.
    """
    mixed = np.concatenate([rgb_to_ycbcr(styled)[..., :1], rgb_to_ycbcr(content)[..., 1:]], axis=2)
    return np.clip(ycbcr_to_rgb(mixed), 0, 255)


def preserve_colors_uint8(styled: np.ndarray, content: np.ndarray) -> np.ndarray:
    """:func:`preserve_colors` rounded to uint8, for results that are stored as images."""
    return np.rint(preserve_colors(styled, content)).astype(np.uint8)
