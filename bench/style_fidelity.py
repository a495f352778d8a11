"""Style fidelity of every bundled style and of the arbitrary network with each painting, on real photos.

    python bench/style_fidelity.py [--contents ../shared/data/content] [--paintings ../shared/data/styles]
                                   [--size 512] [--json result/fidelity.json] [--gallery docs/images/gallery_magenta.jpg]

The measure is nstream/models/fidelity.py: the style predictor's embedding distance of the output
to the painting, relative to the photo's (1.0: no closer than the photo; lower is better). Photos
are scaled to ``--size`` on their longer side and stylized with the torch engine, as stream.py
does for an image. Prints a Markdown table (one row per style, one column per photo, and the mean).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from nstream.engines import create_engine  # noqa: E402
from nstream.media.sources import read_image  # noqa: E402
from nstream.models.fidelity import fidelity  # noqa: E402
from nstream.models.registry import COMPACT_SUFFIX, JOHNSON_SUFFIX, LITE_SUFFIX, list_styles  # noqa: E402
from nstream.models.style_spec import load_style  # noqa: E402
from nstream.stylizer import Stylizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
# the bundled checkpoints' paintings, by file name in ../shared/data/styles
CHECKPOINT_PAINTINGS = {"starry_night": "starry_night.jpg", "wave": "wave.jpg", "the_scream": "the_scream.jpg",
                        "udnie": "udnie.jpg", "woman_with_hat": "woman-with-hat-matisse.jpg"}
# the public-domain paintings (../shared/README.md): the only ones a published picture shows
PUBLIC_DOMAIN = ("starry_night.jpg", "wave.jpg", "the_scream.jpg", "udnie.jpg", "woman-with-hat-matisse.jpg")


def scaled(image: np.ndarray, size: int) -> np.ndarray:
    picture = Image.fromarray(image)
    picture.thumbnail((size, size), Image.LANCZOS)
    return np.asarray(picture).copy()


def stylize(spec: str, photos: list[np.ndarray]) -> list[np.ndarray]:
    style = load_style(spec)
    stylizer = Stylizer(create_engine("torch", style.model, "cpu"), style=style.vector)
    return [stylizer(photo) for photo in photos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=Path, default=SHARED / "content")
    parser.add_argument("--paintings", type=Path, default=SHARED / "styles")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--gallery", type=Path, help="photo, paintings and outputs of the first photo as one picture")
    args = parser.parse_args()
    names = sorted(p.stem for p in args.contents.glob("*.jpg"))
    photos = [scaled(read_image(args.contents / f"{name}.jpg"), args.size) for name in names]
    rows: dict[str, list[float]] = {}
    firsts: dict[str, np.ndarray] = {}
    jobs = [(f"arbitrary: {p.name}", str(p), p) for p in sorted(args.paintings.glob("*.jpg"))]
    for entry in list_styles():
        painting = entry.name.removesuffix(LITE_SUFFIX).removesuffix(COMPACT_SUFFIX)
        if entry.origin == "bundled":  # a bare name is the johnson network (on a CPU it would mean the lite)
            spec = entry.name + JOHNSON_SUFFIX if painting == entry.name else entry.name
            jobs.append((entry.name, spec, args.paintings / CHECKPOINT_PAINTINGS[painting]))
    for label, spec, painting_path in jobs:
        painting = read_image(painting_path)
        outputs = stylize(spec, photos)
        rows[label] = [fidelity(out, photo, painting) for out, photo in zip(outputs, photos, strict=True)]
        firsts[label] = outputs[0]
        print(f"{label}: {np.mean(rows[label]):.3f}", file=sys.stderr)
    print(f"| style | {' | '.join(names)} | mean |")
    print(f"|---|{'---|' * (len(names) + 1)}")
    for label, values in rows.items():
        print(f"| {label} | {' | '.join(f'{v:.2f}' for v in values)} | **{np.mean(values):.2f}** |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"photos": names, "size": args.size, "fidelity": rows}, indent=2))
    if args.gallery:
        write_gallery(args.gallery, photos[0], args.paintings, firsts)


def write_gallery(path: Path, photo: np.ndarray, paintings: Path, outputs: dict[str, np.ndarray],
                  tile: int = 300) -> None:
    """Columns: the photo, then each public-domain painting; rows: painting, arbitrary network (the
    teacher), bundled lite (its distilled student), bundled johnson (blank where none)."""
    def fit(image: np.ndarray | None) -> np.ndarray:
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        if image is not None:
            small = scaled(image, tile)
            top, left = (tile - small.shape[0]) // 2, (tile - small.shape[1]) // 2
            canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
        return canvas

    files = [paintings / name for name in PUBLIC_DOMAIN]
    checkpoint = {v: k for k, v in CHECKPOINT_PAINTINGS.items()}
    rows = [[fit(photo)] + [fit(read_image(f)) for f in files],
            [fit(None)] + [fit(outputs.get(f"arbitrary: {f.name}")) for f in files],
            [fit(None)] + [fit(outputs.get(f"{checkpoint.get(f.name, '-')}_lite")) for f in files],
            [fit(None)] + [fit(outputs.get(checkpoint.get(f.name, "-"))) for f in files]]
    gap = 4
    grid = np.full((len(rows) * (tile + gap), len(rows[0]) * (tile + gap), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            grid[r * (tile + gap):r * (tile + gap) + tile, c * (tile + gap):c * (tile + gap) + tile] = cell
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, quality=85)


if __name__ == "__main__":
    main()
