"""Temporal consistency of offline.py renders: E_warp without and with the temporal loss, and multi-pass.

Runs ``offline.py`` three times on the first frames of a clip (no temporal loss; temporal loss;
temporal loss with extra passes, which continues the second run's work folder so pass 1 is not
recomputed) and prints a Markdown table of E_warp (Farneback flow on the input frames by default,
``--metric-flow dis-fine`` for the finer DIS judge; the renders use DIS), the frames' mean style fidelity
(nstream/models/fidelity.py: a steadier video must not be a washed-out one) and the seconds each run took.

    python bench/offline_bench.py ../shared/data/video/carphone.mp4 ../shared/data/styles/starry_night.jpg \\
        --frames 8 --size 176 --iters 100,50 --passes 3 --out /tmp/offline_bench
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nstream.optimize.video import read_png  # noqa: E402
from nstream.temporal.metrics import METRIC_FLOWS, metric_flow, warping_error  # noqa: E402


def frames(folder: Path, count: int) -> list:
    return [read_png(folder / f"{i:06d}.png") for i in range(count)]


def style_closeness(outputs: list, inputs: list, style: str) -> float:
    """Mean style-embedding distance ratio of the frames (nstream/models/fidelity.py; lower is closer to the painting)."""
    from nstream.media.sources import read_image
    from nstream.models.fidelity import fidelity

    painting = read_image(style, "style image")
    return sum(fidelity(o, i, painting) for o, i in zip(outputs, inputs, strict=True)) / len(outputs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=176)
    p.add_argument("--iters", default="100,50")
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--pass-iters", type=int, help="iterations per frame in passes after the first (offline.py's default: half)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/tmp/offline_bench")
    p.add_argument("--loss-net", default="random", help="offline.py's --loss-net")
    p.add_argument("--extra", default="", help="more offline.py options for every run, e.g. '-I stylized -y 100'")
    p.add_argument("--metric-flow", default="farneback", choices=tuple(METRIC_FLOWS),
                   help="flow that measures E_warp (default farneback, as in the published table)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["-c", args.content, "-s", args.style, "-z", str(args.size), "-i", args.iters, "--limit-frames", str(args.frames),
              "--loss-net", args.loss_net, "--threads", str(args.threads), "--no-progress", "-e", "0", *args.extra.split()]
    runs = [("no temporal loss (-I prev-warped --no-temporal-loss)", "plain", ["--no-temporal-loss"], 1),
            ("temporal loss (-T, default weight)", "temporal", [], 1),
            (f"temporal loss + {args.passes} passes", "temporal",
             ["--passes", str(args.passes), *(["--pass-iters", str(args.pass_iters)] if args.pass_iters else [])], args.passes)]
    rows = []
    for label, name, extra, passes in runs:
        target = out / f"{name}.mp4"
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "offline.py"), *common, "-o", str(target), *extra], check=True)
        seconds = time.perf_counter() - started
        work = Path(f"{target}.work")
        inputs = frames(work / "content", args.frames)
        outputs = frames(work / f"pass{passes}", args.frames)
        error = warping_error(outputs, inputs, flow=metric_flow(args.metric_flow))
        rows.append((label, error, seconds, style_closeness(outputs, inputs, args.style)))
    base = warping_error(inputs, inputs, flow=metric_flow(args.metric_flow))
    print("| render | E_warp (x1e-3) | fidelity | wall s (this run) |")
    print("|---|---|---|---|")
    print(f"| the input frames themselves | {base * 1e3:.2f} | 1.00 | |")
    for label, error, seconds, closeness in rows:
        print(f"| {label} | {error * 1e3:.2f} | {closeness:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
