"""The stylize stage: frame in, stylized frame of the same size out.

Wraps an engine with what every frame needs: upload, optional resize (``--size``/``--scale``),
reflection padding to a multiple of 4, crop back, colour preservation and strength blending.

A conditioned network (paintings, the 26 styles) gets its style vector with every frame. For
Magenta's arbitrary network ``strength`` mixes style vectors instead of pixels, as Magenta does:
``s * painting + (1 - s) * the frame's own style``, so a weaker style is still a painted picture,
not a double exposure of photo and painting.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from nstream.darkguard import follow_dark_input
from nstream.engines import Engine

MULTIPLE = 4  # two stride-2 convolutions down, two 2x upsamples back
MIN_SIDE = 24  # the networks' reflection padding needs frames at least this large


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE, minimum: int = MIN_SIDE) -> tuple[torch.Tensor, int, int]:
    """Pad the bottom/right edges so H and W divide by ``multiple`` and reach ``minimum``.

    Reflection where the frame is large enough, replication for tiny ones (reflection cannot
    pad more than the frame holds).
    """
    h, w = x.shape[-2:]
    ph = max(minimum - h, 0) + (-max(h, minimum)) % multiple
    pw = max(minimum - w, 0) + (-max(w, minimum)) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) the network actually sees for a frame of this working size."""
    def side(n: int) -> int:
        n = max(n, MIN_SIDE)
        return n + (-n) % MULTIPLE

    return side(height), side(width)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.cat([y, (b - y) * 0.564 + 128, (r - y) * 0.713 + 128], dim=1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x[:, 0:1], x[:, 1:2] - 128, x[:, 2:3] - 128
    return torch.cat([y + 1.403 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.773 * cb], dim=1)


class Stylizer:
    """Callable ``image (HxWx3 uint8 RGB) -> image`` of the same size.

    ``style``: the style vector of a conditioned network (None for one-style networks);
    ``own_style``: image -> that image's own style vector, which ``strength`` mixes in (arbitrary network);
    ``dark_guard``: dark or flat frames stay dark or flat (nstream/darkguard.py).
    """

    def __init__(self, engine: Engine, size: tuple[int, int] | None = None, scale: float | None = None,
                 preserve_colors: bool = False, strength: float = 1.0, style: np.ndarray | None = None,
                 own_style: Callable[[np.ndarray], np.ndarray] | None = None, dark_guard: bool = True) -> None:
        self.engine = engine
        self.size = size
        self.scale = scale
        self.preserve_colors = preserve_colors
        self.strength = strength
        self.style = None if style is None else np.asarray(style, dtype=np.float32).reshape(1, -1)
        self.own_style = own_style if self.style is not None else None
        self.dark_guard = dark_guard  # see nstream/darkguard.py

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
        return self.stylize_tensor(self.to_tensor(image), vector)

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(image).to(self.engine.device, non_blocking=True)
        return x.permute(2, 0, 1).unsqueeze(0).float()

    def stylize_tensor(self, x: torch.Tensor, style: np.ndarray | None = None) -> np.ndarray:
        style = self.style if style is None else style
        height, width = x.shape[-2:]
        work_h, work_w = self.work_size(height, width)
        resized = (work_h, work_w) != (height, width)
        net_in = F.interpolate(x, size=(work_h, work_w), mode="bilinear", antialias=True, align_corners=False) if resized else x
        padded, h, w = pad_to_multiple(net_in)
        if style is None:
            y = self.engine.infer(padded)[..., :h, :w]
        else:
            y = self.engine.infer(padded, torch.from_numpy(np.ascontiguousarray(style, dtype=np.float32)))[..., :h, :w]
        if resized:
            y = F.interpolate(y, size=(height, width), mode="bilinear", align_corners=False)
        y = y.clamp(0, 255)
        if self.dark_guard:
            y = follow_dark_input(y, x)
        if self.preserve_colors:
            y = ycbcr_to_rgb(torch.cat([rgb_to_ycbcr(y)[:, :1], rgb_to_ycbcr(x)[:, 1:]], dim=1)).clamp(0, 255)
        if self.strength < 1.0 and not self.mixes_vectors:
            y = self.strength * y + (1.0 - self.strength) * x
        return y[0].permute(1, 2, 0).round().to(torch.uint8).cpu().numpy()
