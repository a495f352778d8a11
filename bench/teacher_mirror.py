"""How far a teacher's answer to a mirrored picture is from its mirrored answer, per painting.

    python bench/teacher_mirror.py [--crops 16] [--size 256]

Until stop 20 ``nstream distill`` mirrored half of its batches after the teacher had painted them,
training students towards ``flip(teacher(x))`` for the input ``flip(x)``. A style network is not
mirror-symmetric (strokes have a direction), so that target differs from ``teacher(flip(x))``, the
picture the student is asked to reproduce everywhere else. This prints the mean squared difference
(pixels in 0..1) on random crops of BSDS500's training photos: under the old batches even the
teacher itself would have scored half of it as its error.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nstream.distill import teacher_function  # noqa: E402
from nstream.models.style_spec import PAINTINGS_DIR  # noqa: E402
from nstream.train import list_images, random_crops  # noqa: E402

PAINTINGS = ("starry_night", "wave", "the_scream", "udnie", "woman_with_hat")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "train" / "bsds500" / "train"))
    args = parser.parse_args()
    x = next(random_crops(list_images(args.data), args.size, args.crops, random.Random(0)))
    print("| painting | MSE(teacher(mirrored x), mirrored teacher(x)) |")
    print("|---|---|")
    for painting in PAINTINGS:
        teach, _ = teacher_function(str(PAINTINGS_DIR / f"{painting}.jpg"), torch.device("cpu"))
        gap = (teach(x.flip(-1)) - teach(x).flip(-1)).square().mean().item()
        print(f"| {painting} | {gap:.4f} |", flush=True)


if __name__ == "__main__":
    main()
