"""Several students of one painting against its teacher, in one run: look, closeness, flicker.

    python bench/student_sweep.py --painting starry_night --student bundled=starry_night_lite \\
        --student w3=/work/nstream-distill-16/ft-w3.pth [--cache DIR] [--json FILE] [--sheet FILE]

For the teacher (Magenta's arbitrary network with ``nstream/paintings/<painting>.jpg``) and each
``--student LABEL=STYLE`` (a style name or checkpoint), all through ONNX Runtime on the CPU:

- SSIM and PSNR of student against teacher on the pictures of ``bench/student_quality.py``
  (``../shared/data/content`` and the first ``--test-images`` BSDS500 test images, centre squares
  at 384x384);
- style fidelity (``nstream/models/fidelity.py``, lower is closer to the painting) on the content
  photos, as ``student_quality.py`` has it;
- per-frame E_warp (no temporal blending; full-size fine DIS as the measuring flow, as
  ``nstream eval``) on the first ``--frames`` frames of each ``--clip``, with the input's own
  E_warp as the floor.

The teacher's outputs and the clips' flows do not depend on the students: with ``--cache`` they are
kept there and reused, so a sweep of students costs only the students. ``--sheet`` writes the first
content photo through teacher and students side by side. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from student_quality import SHARED, held_out_photos, stylizer  # noqa: E402 - same pictures, same networks

from nstream.media.sources import read_image  # noqa: E402
from nstream.models.fidelity import fidelity  # noqa: E402
from nstream.models.parity import psnr, ssim  # noqa: E402
from nstream.models.style_spec import PAINTINGS_DIR  # noqa: E402
from nstream.temporal.evaluate import read_frames  # noqa: E402
from nstream.temporal.metrics import measure_pairs, pair_warping_errors  # noqa: E402


def cached(cache: Path | None, name: str, make: Callable[[], Any]) -> Any:
    """``make()``, or what an earlier run kept under ``cache/name``."""
    if cache is None:
        return make()
    path = cache / name
    if path.is_file():
        return pickle.loads(path.read_bytes())
    value = make()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def measure(label: str, outputs: list[np.ndarray], teacher: list[np.ndarray] | None, content: list[np.ndarray],
            painting: np.ndarray, clips: dict[str, tuple[list[np.ndarray], list[Any]]],
            videos: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    row: dict[str, Any] = {"label": label}
    if teacher is not None:
        ssims = [ssim(t, s) for t, s in zip(teacher, outputs, strict=True)]
        row.update(ssim=float(np.mean(ssims)), ssim_min=float(min(ssims)),
                   psnr=float(np.mean([psnr(t, s) for t, s in zip(teacher, outputs, strict=True)])))
    row["fidelity"] = float(np.mean([fidelity(o, x, painting) for o, x in zip(outputs, content, strict=False)]))
    for clip, (_, pairs) in clips.items():
        row[f"ewarp_{clip}"] = float(np.mean(pair_warping_errors(videos[clip], pairs)))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--painting", default="starry_night")
    parser.add_argument("--student", action="append", required=True, help="LABEL=STYLE (name or checkpoint); repeat")
    parser.add_argument("--test-images", type=int, default=20)
    parser.add_argument("--clip", action="append", help="clip in ../shared/data/video (default: bikes and carphone)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--cache", type=Path, help="folder keeping the teacher's outputs and the clips' flows")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--sheet", type=Path, help="PNG: the first content photo, teacher, then each student")
    args = parser.parse_args()
    content, test = held_out_photos(args.test_images)
    pictures = content + test
    painting = read_image(PAINTINGS_DIR / f"{args.painting}.jpg")
    clip_names = args.clip or ["bikes", "carphone"]
    clips = {name: cached(args.cache, f"clip-{name}-{args.frames}.pkl", lambda n=name: _clip(n, args.frames))
             for name in clip_names}

    def teacher_outputs() -> tuple[list[np.ndarray], dict[str, list[np.ndarray]]]:
        teach = stylizer(f"{args.painting}.jpg")
        return [teach(x) for x in pictures], {name: [teach(f) for f in frames] for name, (frames, _) in clips.items()}

    key = f"teacher-{args.painting}-{args.test_images}-{'-'.join(clip_names)}-{args.frames}.pkl"
    teacher, teacher_videos = cached(args.cache, key, teacher_outputs)
    rows = [{"label": "input", **{f"ewarp_{n}": float(np.mean(pair_warping_errors(f, p))) for n, (f, p) in clips.items()}},
            measure("teacher", teacher, None, content, painting, clips, teacher_videos)]
    sheet = [content[0], teacher[0]]
    for spec in args.student:
        label, _, style = spec.partition("=")
        student = stylizer(style)
        outputs = [student(x) for x in pictures]
        videos = {name: [student(f) for f in frames] for name, (frames, _) in clips.items()}
        rows.append(measure(label, outputs, teacher, content, painting, clips, videos))
        sheet.append(outputs[0])
        print(f"measured {label}", file=sys.stderr)
    columns = " | ".join(f"E_warp {n} (per frame)" for n in clip_names)
    print(f"| {args.painting} | SSIM vs teacher (min) | PSNR | fidelity | {columns} |")
    print("|---|---|---|---|" + "---|" * len(clip_names))
    for row in rows:
        closeness = (f"{row['ssim']:.3f} ({row['ssim_min']:.3f}) | {row['psnr']:.1f} dB" if "ssim" in row else " | ")
        fid = f"{row['fidelity']:.3f}" if "fidelity" in row else ""
        flicker = " | ".join(f"{row[f'ewarp_{n}']:.3g}" for n in clip_names)
        print(f"| {row['label']} | {closeness} | {fid} | {flicker} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if args.sheet:
        Image.fromarray(np.concatenate(sheet, axis=1)).save(args.sheet)


def _clip(name: str, frames: int) -> tuple[list[np.ndarray], list[Any]]:
    video = read_frames(str(SHARED / "video" / f"{name}.mp4"), frames)
    return video, measure_pairs(video)


if __name__ == "__main__":
    main()
