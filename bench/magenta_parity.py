"""Parity of the converted Magenta networks with the published ONNX graphs, through ONNX Runtime.

    python bench/magenta_parity.py [--contents ../shared/data/content] [--paintings ../shared/data/styles]

At the published graphs' own sizes (the arbitrary transformer's fixed 384x384; the predictor's 256;
the 26-style network at each photo's size): for every photo x painting, SSIM and PSNR of our
transformer against (a) the published int8 graph and (b) the same graph with its activation
quantization removed (the float network it approximates), both fed the published predictor's
vector; our predictor's vector against the published one (relative error); and the 26-style
network against its published float graph for styles 0, 7, 13, 19, 25. Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nstream.media.sources import read_image  # noqa: E402
from nstream.models.checkpoints import load_style_model  # noqa: E402
from nstream.models.parity import ARBITRARY_SIZE, Published, ours, psnr, square, ssim  # noqa: E402
from nstream.models.style_spec import PRETRAINED_DIR, predict_vector  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=Path, default=SHARED / "content")
    parser.add_argument("--paintings", type=Path, default=SHARED / "styles")
    args = parser.parse_args()
    published = Published.load()
    transformer, _ = load_style_model(PRETRAINED_DIR / "magenta_arbitrary.safetensors")
    tf26, _ = load_style_model(PRETRAINED_DIR / "tf26.safetensors")
    photos = {p.stem: read_image(p) for p in sorted(args.contents.glob("*.jpg"))}
    print("| painting | vector error | SSIM vs int8 graph | PSNR vs int8 graph | PSNR vs float graph |")
    print("|---|---|---|---|---|")
    all_ssim, all_float = [], []
    for path in sorted(args.paintings.glob("*.jpg")):
        painting = read_image(path)
        theirs = published.style_vector(painting)
        error = float(np.linalg.norm(predict_vector(painting) - theirs) / np.linalg.norm(theirs))
        scores = []
        for photo in photos.values():
            content = square(photo, ARBITRARY_SIZE)
            mine = ours(transformer, content, theirs)
            floated = published.arbitrary(content, theirs, quantized=False)
            int8 = published.arbitrary(content, theirs)
            scores.append((ssim(int8, mine), psnr(int8, mine), psnr(floated, mine)))
        s, p, f = (np.array(column) for column in zip(*scores, strict=True))
        all_ssim += list(s)
        all_float += list(f)
        print(f"| {path.name} | {error:.1%} | {s.mean():.3f} (min {s.min():.3f}) | {p.mean():.1f} dB | "
              f"{f.mean():.1f} dB (min {f.min():.1f}) |")
    print(f"\nall {len(all_ssim)} pairs: SSIM vs int8 graph min {min(all_ssim):.3f}, mean {np.mean(all_ssim):.3f}; "
          f"PSNR vs float graph min {min(all_float):.1f} dB")
    print("\n| tf26 style | SSIM (min over photos) | PSNR (min over photos) |")
    print("|---|---|---|")
    for index in (0, 7, 13, 19, 25):
        weights = np.eye(26, dtype=np.float32)[index]
        pairs = [(published.tf26(photo, weights), ours(tf26, photo, weights)) for photo in photos.values()]
        print(f"| tf26-{index:02d} | {min(ssim(a, b) for a, b in pairs):.4f} | {min(psnr(a, b) for a, b in pairs):.1f} dB |")


if __name__ == "__main__":
    main()
