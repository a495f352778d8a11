"""Seconds per L-BFGS iteration: nstream's offline.py against neural-style-pt (ProGamerGov's
PyTorch port of jcjohnson/neural-style, `pip install neural-style==0.5.7`), the best-known
PyTorch Gatys implementation, on this machine at the same sizes and settings.

    pip install neural-style==0.5.7
    python bench/gatys_compare.py --sizes 256,512 --iters 5,25

Same work for both: VGG19 with average pooling, content relu4_2, style relu1_1..relu5_1, L-BFGS
(one loss+gradient evaluation per iteration), one style image, no coarse-to-fine, no early
stopping. Neither tool can download ImageNet weights here, so each gets a seeded random VGG19
(its own seeding; speed does not depend on the weights). Each tool runs twice, with N1 and N2 iterations,
and the time per iteration is (t2 - t1) / (N2 - N1): start-up, model loading and image I/O cancel.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def random_vgg19(path: Path, seed: int = 0) -> Path:
    """VGG19 convolution weights in torchvision's key layout, which neural-style-pt's loader reads."""
    torch.manual_seed(seed)
    features = torchvision.models.vgg19(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def neural_style_pt(content: Path, style: Path, size: int, iters: int, out: Path, vgg: Path) -> list[str]:
    return [shutil.which("neural-style") or "neural-style", "-content_image", str(content), "-style_image", str(style),
            "-image_size", str(size), "-num_iterations", str(iters), "-gpu", "c", "-backend", "nn",
            "-optimizer", "lbfgs", "-pooling", "avg", "-model_file", str(vgg), "-disable_check",
            "-content_layers", "relu4_2", "-style_layers", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
            "-print_iter", "0", "-save_iter", "0", "-init", "image", "-seed", "0", "-output_image", str(out)]


def nstream_offline(content: Path, style: Path, size: int, iters: int, out: Path, vgg: Path) -> list[str]:
    del vgg  # offline.py builds its own seeded random VGG19 (--loss-net random)
    return [sys.executable, str(ROOT / "offline.py"), "-c", str(content), "-s", str(style), "-o", str(out),
            "-z", str(size), "-i", str(iters), "-a", "lbfgs", "--loss-net", "random", "-e", "0", "--scales", "1",
            "--no-progress", "--no-resume", "--seed", "0"]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:2])} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=DATA / "content" / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=DATA / "styles" / "starry_night.jpg")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--iters", default="5,25", help="N1,N2: the two run lengths whose difference is timed")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each length; the fastest counts")
    args = parser.parse_args()
    n1, n2 = (int(v) for v in args.iters.split(","))
    tools = {"neural-style-pt 0.5.7": neural_style_pt, "nstream offline.py": nstream_offline}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; iterations {n1} and {n2}")
    print("| tool | size | s/iteration |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        vgg = random_vgg19(Path(tmp) / "vgg19-random.pth")
        for size in (int(s) for s in args.sizes.split(",")):
            for name, command in tools.items():
                out = Path(tmp) / f"out_{size}.png"
                t1 = min(timed(command(args.content, args.style, size, n1, out, vgg)) for _ in range(args.repeats))
                t2 = min(timed(command(args.content, args.style, size, n2, out, vgg)) for _ in range(args.repeats))
                print(f"| {name} | {size} | {(t2 - t1) / (n2 - n1):.3f} |", flush=True)


if __name__ == "__main__":
    main()
