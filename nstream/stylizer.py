"""The stylize stage: frame in, stylized frame of the same size out.

Wraps an engine with what every frame needs: optional resize (``--size``/``--scale``), reflection
padding to a multiple of 4, crop back, the dark guard, colour preservation and strength blending.
All of it is NumPy and OpenCV, so the stage runs where PyTorch is not installed (the light
install: ONNX Runtime alone); engines take and give NCHW float32 arrays in 0..255.

A conditioned network (paintings, the 26 styles) gets its style vector with every frame. For
Magenta's arbitrary network ``strength`` mixes style vectors instead of pixels, as Magenta does:
``s * painting + (1 - s) * the frame's own style``, so a weaker style is still a painted picture,
not a double exposure of photo and painting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from nstream.colors import preserve_colors
from nstream.darkguard import follow_dark_input

MULTIPLE = 4  # two stride-2 convolutions down, two 2x upsamples back
MIN_SIDE = 24  # the networks' reflection padding needs frames at least this large


def pad_to_multiple(x: np.ndarray, multiple: int = MULTIPLE, minimum: int = MIN_SIDE) -> tuple[np.ndarray, int, int]:
    """Pad the bottom/right edges of an ... x H x W array so H and W divide by ``multiple`` and reach
    ``minimum``. Reflection where the frame is large enough, replication for tiny ones (reflection
    cannot pad more than the frame holds)."""
    h, w = x.shape[-2:]
    ph = max(minimum - h, 0) + (-max(h, minimum)) % multiple
    pw = max(minimum - w, 0) + (-max(w, minimum)) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode=mode)
    return x, h, w


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) the network actually sees for a frame of this working size."""
    def side(n: int) -> int:
        n = max(n, MIN_SIDE)
        return n + (-n) % MULTIPLE

    return side(height), side(width)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging."""
    shrinking = height < image.shape[0] or width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class Stylizer:
    """Callable ``image (HxWx3 uint8 RGB) -> image`` of the same size.

    ``style``: the style vector of a conditioned network (None for one-style networks);
    ``own_style``: image -> that image's own style vector, which ``strength`` mixes in (arbitrary network);
    ``dark_guard``: dark or flat frames stay dark or flat (nstream/darkguard.py).
    """

    def __init__(self, engine: Any, size: tuple[int, int] | None = None, scale: float | None = None,
                 preserve_colors: bool = False, strength: float = 1.0, style: np.ndarray | None = None,
                 own_style: Callable[[np.ndarray], np.ndarray] | None = None, dark_guard: bool = True) -> None:
        self.engine = engine
        self.size = size
        self.scale = scale
        self.preserve_colors = preserve_colors
        self.strength = strength
        self.style = None if style is None else np.asarray(style, dtype=np.float32).reshape(1, -1)
        self.own_style = own_style if self.style is not None else None
        self.dark_guard = dark_guard

    def work_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the network runs at for a frame of this size."""
        if self.size:
            return self.size[1], self.size[0]
        if self.scale and self.scale != 1.0:
            return max(MULTIPLE, round(height * self.scale)), max(MULTIPLE, round(width * self.scale))
        return height, width

    @property
    def mixes_vectors(self) -> bool:
        """Whether ``strength`` works on the style vector (rather than on the pixels)."""
        return self.own_style is not None and self.strength < 1.0

    def __call__(self, image: np.ndarray, style: np.ndarray | None = None) -> np.ndarray:
        """The stylized image; ``style`` overrides the stylizer's own vector (a morph between two styles)."""
        vector = self.style if style is None else np.asarray(style, dtype=np.float32).reshape(1, -1)
        if vector is not None and self.mixes_vectors:
            vector = self.strength * vector + (1.0 - self.strength) * self.own_style(image).reshape(1, -1)
        height, width = image.shape[:2]
        work_h, work_w = self.work_size(height, width)
        resized = (work_h, work_w) != (height, width)
        net_in = resize(image, work_h, work_w) if resized else image
        batch = np.ascontiguousarray(net_in.transpose(2, 0, 1)[None], dtype=np.float32)
        padded, h, w = pad_to_multiple(batch)
        out = self.engine.infer(np.ascontiguousarray(padded), vector)[0, :, :h, :w].transpose(1, 2, 0)
        if resized:
            out = cv2.resize(np.ascontiguousarray(out), (width, height), interpolation=cv2.INTER_LINEAR)
        y = np.clip(out, 0, 255)
        content = image.astype(np.float32)
        if self.dark_guard:
            y = follow_dark_input(y, content)
        if self.preserve_colors:
            y = preserve_colors(y, content)
        if self.strength < 1.0 and not self.mixes_vectors:
            y = self.strength * y + (1.0 - self.strength) * content
        return np.rint(y).astype(np.uint8)
