"""Stylize-only speed of ONNX graphs in ONNX Runtime (CPU), taking turns in one process.

    git show HEAD~1:nstream/styles/starry_night_lite.onnx > /tmp/before.onnx
    python bench/graph_ab.py --graph before=/tmp/before.onnx --graph after=nstream/styles/starry_night_lite.onnx

For a change to how a graph is exported (same network, other ops): each round times every graph on the
same random 640x360 frame with the engine's own session options (no spinning threads), and the
medians and ratios against the first graph are printed as JSON. Alternating spreads the noise of a
shared machine over all graphs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from nstream.engines.graph_engine import cpu_session


def frames_per_second(session: object, frame: np.ndarray, frames: int) -> float:
    name = session.get_inputs()[0].name
    for _ in range(3):
        session.run(None, {name: frame})
    start = time.perf_counter()
    for _ in range(frames):
        session.run(None, {name: frame})
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (multiples of 4)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    graphs = dict(item.split("=", 1) for item in args.graph)
    sessions = {label: cpu_session(open(path, "rb").read(), threads=args.threads or None) for label, path in graphs.items()}
    frame = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    runs: dict[str, list[float]] = {label: [] for label in sessions}
    for _ in range(args.rounds):
        for label, session in sessions.items():
            runs[label].append(round(frames_per_second(session, frame, args.frames), 1))
    medians = {label: statistics.median(values) for label, values in runs.items()}
    first = next(iter(medians.values()))
    print(json.dumps({"size": args.size, "fps": runs, "median_fps": medians,
                      "ratio_to_first": {label: round(value / first, 3) for label, value in medians.items()}}, indent=1))


if __name__ == "__main__":
    main()
