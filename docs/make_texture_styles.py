"""Procedural "paintings" as extra training styles for the conditioned lite (``distill --styles``).

The conditioned student saw five paintings, and paints ones it never saw as a tint: five points do
not span the style space (Magenta's predictor learned it from ~80 000 paintings and textures). No
more public-domain paintings are on this machine, so this draws textures with the traits paintings
differ in: mosaics of flat tiles with dark grout, swirling oriented strokes, pointillist dots,
hatching, flat colour blobs with outlines and banded waves, each in a random palette. Seeded,
so the set is the same on every machine:

    python docs/make_texture_styles.py OUT_DIR [--count 200] [--size 512] [--seed 0]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

Rng = np.random.Generator


def palette(rng: Rng, colours: int) -> np.ndarray:
    """``colours`` RGB colours (uint8) around one or two random hues, at random saturation and value."""
    hues = rng.choice(rng.uniform(0, 180, rng.integers(1, 3)), colours) + rng.normal(0, rng.uniform(5, 60), colours)
    hsv = np.stack([np.mod(hues, 180), rng.uniform(40, 255, colours), rng.uniform(60, 255, colours)], axis=1)
    return cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]


def smooth_field(rng: Rng, size: int, scale: float) -> np.ndarray:
    """A smooth random field in [0, 1] whose features are about ``scale`` pixels across."""
    coarse = max(2, int(size / scale))
    field = cv2.resize(rng.random((coarse, coarse)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.normalize(field, None, 0, 1, cv2.NORM_MINMAX)


def mosaic(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, rng.integers(3, 8))
    points = rng.random((rng.integers(80, 600), 2)) * size
    subdivision = cv2.Subdiv2D((0, 0, size, size))
    for x, y in points:
        subdivision.insert((float(min(x, size - 1)), float(min(y, size - 1))))
    facets, _ = subdivision.getVoronoiFacetList([])
    image = np.zeros((size, size, 3), np.uint8)
    grout = tuple(int(c) for c in palette(rng, 1)[0] // rng.integers(3, 8))
    for facet in facets:
        polygon = facet.astype(np.int32)
        cv2.fillConvexPoly(image, polygon, tuple(int(c) for c in colours[rng.integers(len(colours))]))
        cv2.polylines(image, [polygon], True, grout, int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


def strokes(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, rng.integers(3, 7))
    image = np.full((size, size, 3), colours[0], np.uint8)
    angle = smooth_field(rng, size, rng.uniform(60, 300)) * rng.uniform(np.pi, 4 * np.pi)
    length, width = rng.uniform(6, 40), int(rng.integers(2, 8))
    for _ in range(int(rng.integers(1500, 5000))):
        x, y = rng.integers(0, size, 2)
        a = angle[y, x]
        dx, dy = np.cos(a) * length / 2, np.sin(a) * length / 2
        colour = tuple(int(c) for c in np.clip(colours[rng.integers(len(colours))] + rng.normal(0, 12, 3), 0, 255))
        cv2.line(image, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), colour, width, cv2.LINE_AA)
    return image


def dots(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, rng.integers(3, 8))
    image = np.full((size, size, 3), colours[0], np.uint8)
    radius = rng.uniform(2, 10)
    for _ in range(int(size * size / (radius * radius * 2))):
        x, y = rng.integers(0, size, 2)
        cv2.circle(image, (int(x), int(y)), int(max(1, rng.normal(radius, radius / 4))),
                   tuple(int(c) for c in colours[rng.integers(len(colours))]), -1, cv2.LINE_AA)
    return image


def hatching(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, 3)
    image = np.full((size, size, 3), colours[0], np.uint8)
    tone = smooth_field(rng, size, rng.uniform(40, 200))
    spacing = int(rng.integers(4, 14))
    for angle in rng.uniform(0, np.pi, int(rng.integers(1, 4))):
        layer = np.zeros((size * 2, size * 2), np.uint8)
        for offset in range(0, size * 2, spacing):
            cv2.line(layer, (0, offset), (size * 2, offset), 255, int(rng.integers(1, 4)), cv2.LINE_AA)
        turn = cv2.getRotationMatrix2D((size, size), np.degrees(angle), 1.0)
        lines = cv2.warpAffine(layer, turn, (size * 2, size * 2))[size // 2:size // 2 + size, size // 2:size // 2 + size]
        keep = (lines / 255.0) * (tone < rng.uniform(0.3, 0.8))
        image = (image * (1 - keep[..., None]) + colours[rng.integers(1, 3)] * keep[..., None]).astype(np.uint8)
    return image


def blobs(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, rng.integers(3, 7))
    field = smooth_field(rng, size, rng.uniform(30, 160))
    levels = np.minimum((field * len(colours)).astype(int), len(colours) - 1)
    image = colours[levels]
    if rng.random() < 0.7:
        edges = cv2.Canny(levels.astype(np.uint8) * 40, 10, 30)
        edges = cv2.dilate(edges, np.ones((2, 2), np.uint8), iterations=int(rng.integers(1, 3)))
        image[edges > 0] = palette(rng, 1)[0] // 4
    return image


def waves(rng: Rng, size: int) -> np.ndarray:
    colours = palette(rng, rng.integers(2, 6)).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    warp = smooth_field(rng, size, rng.uniform(50, 250)) * rng.uniform(5, 60)
    angle = rng.uniform(0, np.pi)
    phase = (np.cos(angle) * x + np.sin(angle) * y + warp) / rng.uniform(4, 30)
    band = (np.sin(phase) + 1) / 2 * (len(colours) - 1)
    low = np.floor(band).astype(int)
    high = np.minimum(low + 1, len(colours) - 1)
    mix = (band - low)[..., None]
    return (colours[low] * (1 - mix) + colours[high] * mix).astype(np.uint8)


KINDS: dict[str, Callable[[Rng, int], np.ndarray]] = {
    "mosaic": mosaic, "strokes": strokes, "dots": dots, "hatching": hatching, "blobs": blobs, "waves": waves}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    names = list(KINDS)
    for index in range(args.count):
        kind = names[index % len(names)]
        image = KINDS[kind](rng, args.size)
        cv2.imwrite(str(args.out / f"{kind}_{index:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    print(f"{args.count} textures in {args.out}")


if __name__ == "__main__":
    main()
