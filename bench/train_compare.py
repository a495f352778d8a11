"""``nstream train`` with each loss network on one painting, same recipe, then measured on the photos.

    nice -n 5 python bench/train_compare.py --style starry_night --steps 300 --out /tmp/train_cmp

Trains a ``lite`` network per ``--nets`` entry (BSDS500 train crops of 128 px, batch 4, Adam 5e-3,
50 identity steps, content 1, TV 0; style weight 5 on the random VGG16 as docs/train_styles.sh, and
``--magenta-style-weight`` on magenta), then stylizes the 5 shared photos at ``--size`` and reports
per network the style-embedding distance ratio (nstream/models/fidelity.py, lower is closer), the
random-VGG19 Gram judge and the edge SSIM of bench/loss_net_compare.py, next to the bundled
distilled student of the same painting (``<style>_lite``) when there is one. ``--sheet`` writes
photo | one column per network | the student.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data"

from loss_net_compare import GramJudge, edge_ssim, grid, read  # noqa: E402


def train(net: str, style: Path, out: Path, args: argparse.Namespace) -> float:
    """Train one network; returns the wall seconds."""
    weight = args.magenta_style_weight if net == "magenta" else 5.0
    command = [sys.executable, "-m", "nstream", "train", "--style", str(style), "--data", str(DATA / "train/bsds500/train"),
               "--out", str(out), "--arch", "lite", "--lr", "5e-3", "--loss-net", net, "--image-size", "128",
               "--batch-size", "4", "--max-steps", str(args.steps), "--style-weight", str(weight), "--content-weight", "1",
               "--tv-weight", "0", "--identity-steps", "50", "--style-size", "256", "--checkpoint-every", "100",
               "--seed", "0"]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(spec: str, painting: np.ndarray, photos: list[np.ndarray], judge: GramJudge) -> tuple[dict, list]:
    """Mean fidelity, Gram judge and edge SSIM of a style over the photos, and its pictures."""
    from nstream.engines import TorchEngine
    from nstream.models.fidelity import fidelity
    from nstream.models.style_spec import load_style
    from nstream.stylizer import Stylizer

    style = load_style(spec)
    stylize = Stylizer(TorchEngine(style.model, device="cpu", precision="fp32"), style=style.vector, dark_guard=False)
    outputs = [stylize(photo) for photo in photos]
    return {"fid": round(float(np.mean([fidelity(o, p, painting) for o, p in zip(outputs, photos, strict=True)])), 3),
            "gram": round(float(np.mean([judge(o, painting) for o in outputs])), 4),
            "edges": round(float(np.mean([edge_ssim(o, p) for o, p in zip(outputs, photos, strict=True)])), 3)}, outputs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry_night")
    p.add_argument("--nets", default="random,magenta")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--magenta-style-weight", type=float, default=50.0)
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--out", type=Path, default=Path("/tmp/train_compare"))
    p.add_argument("--sheet", type=Path)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    style_path = next((DATA / "styles").glob(f"{args.style}.*"))
    painting = read(style_path)
    photos = [read(path, args.size) for path in sorted((DATA / "content").glob("*.jpg"))]
    judge = GramJudge()
    columns = []
    for net in args.nets.split(","):
        checkpoint = args.out / f"{args.style}_{net}.pth"
        seconds = train(net, style_path, checkpoint, args) if not checkpoint.exists() else 0.0
        row, outputs = measure(str(checkpoint), painting, photos, judge)
        print(json.dumps({"net": net, "steps": args.steps, "train_s": round(seconds), **row}), flush=True)
        columns.append((f"lite, {net} loss", outputs))
    from nstream.models.registry import list_styles

    student = f"{args.style}_lite"
    if any(entry.name == student for entry in list_styles()):
        row, outputs = measure(student, painting, photos, judge)
        print(json.dumps({"net": "bundled distilled student", "style": student, **row}), flush=True)
        columns.append(("distilled student", outputs))
    if args.sheet:
        write_sheet(photos[:3], columns, args.sheet)


def write_sheet(photos: list[np.ndarray], columns: list[tuple[str, list[np.ndarray]]], target: Path, tile: int = 200) -> None:
    """Photo, then each network's picture of it, one row per photo, labelled columns."""
    from PIL import Image

    rows = [[Image.fromarray(photo), *[Image.fromarray(outputs[i]) for _, outputs in columns]]
            for i, photo in enumerate(photos)]
    for row in rows:
        for picture in row:
            picture.thumbnail((tile, tile))
    grid(rows, ["photo", *[name for name, _ in columns]], target, tile)


if __name__ == "__main__":
    main()
