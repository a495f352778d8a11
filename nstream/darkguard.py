"""Dark and flat frames stay dark and flat: the stylization's brightness and contrast follow the input's.

Instance normalization stretches whatever variation a frame has to full contrast, so a near-black
frame (a fade-in, a night scene) came out as a bright, full-contrast picture of its noise and codec
blocks (Tübingen at 4 % brightness: output mean 108, deviation 64). Every network family here does
it, the pretrained Magenta ones too.

Where the input's luminance is darker than ``DARK_MEAN`` or flatter than ``FLAT_STD`` (0..255), the
output is pulled in about its per-channel means: its deviation from them scaled by
``std(input) / FLAT_STD`` and the means themselves by ``mean(input) / DARK_MEAN``. Both factors are
1 for ordinary frames (no frame of the shared clips or photos is that dark or flat: darkest mean 61,
flattest deviation 29), so those come out exactly as before; a black frame comes out black, and a
fade from black brightens and gains contrast smoothly with its input.
"""

from __future__ import annotations

import numpy as np

DARK_MEAN = 40.0
FLAT_STD = 20.0
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def tone(image: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the luminance of an H x W x 3 0..255 image (every 4th pixel)."""
    luma = image[::4, ::4].astype(np.float32) @ LUMA
    return float(luma.mean()), float(luma.std())


def follow_dark_input(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``stylized`` (H x W x 3 float) with brightness and contrast no higher than a dark or flat
    ``content`` allows; the same array when the content is neither."""
    mean, std = tone(content)
    brightness, contrast = min(1.0, mean / DARK_MEAN), min(1.0, std / FLAT_STD)
    if brightness >= 1.0 and contrast >= 1.0:
        return stylized
    centre = stylized.reshape(-1, stylized.shape[-1]).mean(axis=0)
    return np.clip(brightness * centre + contrast * (stylized - centre), 0, 255)
