"""The style vectors a conditioned student trains on: each style image's own, and mixes of two.

A ``magenta_lite`` (:mod:`nstream.models.lite` with a style input) must paint from any vector
Magenta's predictor gives, so the pool (:mod:`nstream.distill`) pairs every crop with the vector
of one of the training style images or, for ``MIX_SHARE`` of the crops, a random mix of two: the
space between the paintings is where a user's own painting is likely to land.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nstream.errors import NStreamError
from nstream.media.formats import STYLE_IMAGE_SUFFIXES

MIX_SHARE = 0.3


def style_images(paths: list[str]) -> list[Path]:
    """The image files among ``paths`` and in the folders among them (searched recursively), sorted."""
    images: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            images += sorted(p for p in entry.rglob("*") if p.suffix.lower() in STYLE_IMAGE_SUFFIXES)
        elif entry.is_file():
            images.append(entry)
        else:
            raise NStreamError(f"style images not found: {entry}")
    if not images:
        raise NStreamError(f"no style images ({', '.join(sorted(STYLE_IMAGE_SUFFIXES))}) in {', '.join(paths)}")
    return images


def sample_vectors(images: list[Path], count: int, seed: int, mix_share: float = MIX_SHARE) -> np.ndarray:
    """``count`` x 100 float32 style vectors: each an image's own or, for ``mix_share`` of them, a mix of two
    (weights 0.2-0.8), drawn with ``seed``; the images' vectors come from the predictor's on-disk cache."""
    from nstream.models.style_spec import painting_vector
    from nstream.progress import step_progress

    with step_progress("style vectors", total=len(images)) as advance:
        vectors = []
        for image in images:
            vectors.append(painting_vector(image))
            advance()
    table = np.stack(vectors)
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(table), count), rng.integers(0, len(table), count)
    weight = rng.uniform(0.2, 0.8, (count, 1)).astype(np.float32)
    mixed = (rng.random(count) < mix_share)[:, None]
    return np.where(mixed, weight * table[first] + (1 - weight) * table[second], table[first]).astype(np.float32)
