"""Distilled students against their teachers: SSIM, PSNR and the style-fidelity ratio, per painting.

    python bench/student_quality.py [--paintings starry_night,wave,...] [--test-images 20] [--student '{painting}_lite']

For each painting: the teacher is Magenta's arbitrary network with ``nstream/paintings/<p>.jpg``,
the student the bundled ``<p>_lite`` (``--student``: any ``-s`` style with ``{painting}`` in it, e.g.
``{painting}_johnson`` or a checkpoint path). Held-out pictures: ``../shared/data/content`` and the first
``--test-images`` of BSDS500's test split, each centre-cropped and resized to 384x384 as the issue
asks. SSIM and PSNR are of student against teacher; fidelity (nstream/models/fidelity.py, lower is
closer to the painting) is on the content photos for both, so they can be compared. Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nstream.engines import create_engine  # noqa: E402
from nstream.media.sources import read_image  # noqa: E402
from nstream.models.fidelity import fidelity  # noqa: E402
from nstream.models.parity import psnr, square, ssim  # noqa: E402
from nstream.models.style_spec import PAINTINGS_DIR, load_style  # noqa: E402
from nstream.stylizer import Stylizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SIZE = 384


def stylizer(spec: str) -> Stylizer:
    style = load_style(spec)
    return Stylizer(create_engine("onnxruntime", style.model, "cpu"), style=style.vector)


def held_out_photos(test_images: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(the shared content photos, the first ``test_images`` of BSDS500's test split), square at SIZE."""
    content = [square(read_image(p), SIZE) for p in sorted((SHARED / "content").glob("*.jpg"))]
    test = [square(read_image(p), SIZE) for p in sorted((SHARED / "train" / "bsds500" / "test").glob("*.jpg"))
            [:test_images]]
    return content, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", default="starry_night,wave,the_scream,udnie,woman_with_hat")
    parser.add_argument("--test-images", type=int, default=20)
    parser.add_argument("--student", default="{painting}_lite", help="the student of each painting, as -s takes it")
    args = parser.parse_args()
    content, test = held_out_photos(args.test_images)
    print(f"| painting | SSIM student vs teacher | PSNR | fidelity: teacher | student | {len(content) + len(test)} "
          "pictures at 384x384 |")
    print("|---|---|---|---|---|---|")
    for name in args.paintings.split(","):
        painting = read_image(PAINTINGS_DIR / f"{name}.jpg")
        teacher, student = stylizer(f"{name}.jpg"), stylizer(args.student.format(painting=name))
        pairs = [(teacher(x), student(x)) for x in content + test]
        ssims = [ssim(t, s) for t, s in pairs]
        psnrs = [psnr(t, s) for t, s in pairs]
        teacher_fid = np.mean([fidelity(t, x, painting) for (t, _), x in zip(pairs, content, strict=False)])
        student_fid = np.mean([fidelity(s, x, painting) for (_, s), x in zip(pairs, content, strict=False)])
        print(f"| {name} | {np.mean(ssims):.3f} (min {min(ssims):.3f}) | {np.mean(psnrs):.1f} dB | "
              f"{teacher_fid:.2f} | {student_fid:.2f} | |")


if __name__ == "__main__":
    main()
