"""One conditioned lite for every painting (``distill --styles``) against the arbitrary network and
the one-painting students: closeness, look and speed, seen and unseen paintings, one run.

    python bench/conditioned_quality.py --student /work/nstream-cond/magenta_lite.pth [--student OTHER.pth ...] \
        [--paintings starry_night,wave,the_scream,udnie,woman_with_hat,candy,mosaic] [--test-images 20]

A painting is ``nstream/paintings/<p>.jpg`` or else ``../shared/data/styles/<p>.jpg``; "seen" says
whether the student's checkpoint lists it among its training styles. For each: SSIM and PSNR
against the teacher (Magenta's arbitrary network with that painting's vector) on the pictures of
``bench/student_quality.py``, and fidelity (lower is closer to the painting) on the content photos,
for each conditioned student and, where one is bundled, the painting's own ``<p>_lite``. Then the
stylize-only speed of the teacher, the students and a plain lite at 640x360 (ONNX Runtime, CPU,
alternating): several students of different widths in one run give the speed-fidelity curve. ``--sheet``
writes the first content photo through teacher and conditioned student, a row per painting. Prints Markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from student_quality import ROOT, SHARED, held_out_photos, stylizer  # noqa: E402 - same pictures, same networks

from nstream.engines import create_engine  # noqa: E402
from nstream.media.sources import read_image  # noqa: E402
from nstream.models.checkpoints import load_style_model  # noqa: E402
from nstream.models.fidelity import fidelity  # noqa: E402
from nstream.models.parity import psnr, ssim  # noqa: E402
from nstream.models.style_spec import PAINTINGS_DIR, painting_vector  # noqa: E402
from nstream.stylizer import Stylizer  # noqa: E402


def painting_file(name: str) -> Path:
    bundled = PAINTINGS_DIR / f"{name}.jpg"
    return bundled if bundled.is_file() else SHARED / "styles" / f"{name}.jpg"


def closeness(network: Stylizer, teacher_outputs: list[np.ndarray], pictures: list[np.ndarray], content: list[np.ndarray],
              painting: np.ndarray) -> str:
    outputs = [network(x) for x in pictures]
    ssims = [ssim(t, s) for t, s in zip(teacher_outputs, outputs, strict=True)]
    psnrs = [psnr(t, s) for t, s in zip(teacher_outputs, outputs, strict=True)]
    look = np.mean([fidelity(s, x, painting) for s, x in zip(outputs, content, strict=False)])
    return f"{np.mean(ssims):.3f} (min {min(ssims):.3f}) | {np.mean(psnrs):.1f} dB | {look:.2f}"


def write_sheet(path: Path, photo: np.ndarray, rows: list[tuple[np.ndarray, np.ndarray]], width: int = 256) -> None:
    """painting | teacher | conditioned student on ``photo``, a row per painting, tiles ``width`` wide."""
    import cv2
    from PIL import Image

    def tile(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])), interpolation=cv2.INTER_AREA)

    height = tile(photo).shape[0]
    lines = [np.concatenate([cv2.resize(painting, (width, height), interpolation=cv2.INTER_AREA), tile(teacher),
                             tile(student)], axis=1) for painting, (teacher, student) in rows]
    Image.fromarray(np.concatenate(lines, axis=0)).save(path, quality=90)


def speed(networks: dict[str, Stylizer], rounds: int = 5, frames: int = 20) -> dict[str, float]:
    """Stylize-only fps at 640x360, the networks taking turns."""
    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    seconds: dict[str, list[float]] = {label: [] for label in networks}
    for network in networks.values():
        network(frame)  # warm-up
    for _ in range(rounds):
        for label, network in networks.items():
            started = time.perf_counter()
            for _ in range(frames):
                network(frame)
            seconds[label].append((time.perf_counter() - started) / frames)
    return {label: 1 / float(np.median(values)) for label, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", action="append", required=True,
                        help="a magenta_lite checkpoint (distill --styles); repeat to compare several (a speed-fidelity curve)")
    parser.add_argument("--paintings", default="starry_night,wave,the_scream,udnie,woman_with_hat,candy,mosaic")
    parser.add_argument("--test-images", type=int, default=20)
    parser.add_argument("--sheet", type=Path, help="write painting | teacher | (first) student of the first photo here")
    args = parser.parse_args()
    students = {}
    for path in args.student:
        model, meta = load_style_model(path)
        students[Path(path).stem] = (create_engine("onnxruntime", model, "cpu"), meta)
        print(f"{Path(path).name}: {meta.get('steps')} steps, {len(meta.get('styles', []))} training styles")
    content, test = held_out_photos(args.test_images)
    pictures = content + test
    print(f"\n{len(pictures)} pictures at 384x384; each student: SSIM vs teacher (min) | PSNR | fidelity\n")
    print("| painting | seen in training | teacher fidelity | " + " | ".join(students) + " | its own lite |\n"
          + "|---" * (len(students) + 4) + "|")
    sheet = []
    first_meta = next(iter(students.values()))[1]
    for name in args.paintings.split(","):
        file = painting_file(name)
        painting = read_image(file)
        teacher = stylizer(str(file))
        teacher_outputs = [teacher(x) for x in pictures]
        teacher_look = np.mean([fidelity(t, x, painting) for t, x in zip(teacher_outputs, content, strict=False)])
        cells = []
        for engine, _ in students.values():
            conditioned = Stylizer(engine, style=painting_vector(file))
            cells.append(closeness(conditioned, teacher_outputs, pictures, content, painting).replace(" | ", " / "))
            if len(cells) == 1:
                sheet.append((painting, (teacher_outputs[0], conditioned(pictures[0]))))
        own = ROOT / "nstream" / "styles" / f"{name}_lite.pth"
        own_cell = closeness(stylizer(f"{name}_lite"), teacher_outputs, pictures, content, painting).replace(" | ", " / ") \
            if own.is_file() else ""
        seen = "yes" if file.name in first_meta.get("styles", []) else "**no**"
        print(f"| {name} | {seen} | {teacher_look:.2f} | " + " | ".join(cells) + f" | {own_cell} |")
    if args.sheet:
        write_sheet(args.sheet, pictures[0], sheet)
    starry = painting_file("starry_night")
    networks = {"arbitrary network": stylizer(str(starry))}
    networks.update({label: Stylizer(engine, style=painting_vector(starry)) for label, (engine, _) in students.items()})
    networks["the_scream_lite (plain lite)"] = stylizer("the_scream_lite")
    fps = speed(networks)
    print("\nstylize only, 640x360, ONNX Runtime on the CPU, alternating: " + ", ".join(f"{k} {v:.1f} fps" for k, v in fps.items()))


if __name__ == "__main__":
    main()
