"""Does ONNX Runtime's thread spin-waiting pay on this machine? Alternating A/B for docs/BENCHMARKS.md.

    python bench/ort_spin.py [--style starry_night_lite] [--size 640x360] [--rounds 3] [--frames 30]

Builds (or reuses from the engine cache) the style's fp32 ONNX graph, then per round runs it with
spinning on and off (``cpu_session(path, spin=...)``) and prints frames per second and process CPU
time per frame for each. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nstream.engines import create_engine  # noqa: E402
from nstream.engines.graph_engine import cpu_session  # noqa: E402
from nstream.models.checkpoints import load_style_model  # noqa: E402
from nstream.models.registry import resolve_style  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="starry_night_lite")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model, _ = load_style_model(resolve_style(args.style).path)
    graph = str(create_engine("onnxruntime", model, "cpu", "fp32").build.path)
    frame = (np.random.default_rng(0).random((1, 3, height, width)) * 255).astype(np.float32)
    runs: dict[str, list[dict[str, float]]] = {"spin": [], "no_spin": []}
    for _ in range(args.rounds):
        for spin in (True, False):
            session = cpu_session(graph, spin=spin)
            feed = {session.get_inputs()[0].name: frame}
            for _ in range(3):
                session.run(None, feed)
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.frames):
                session.run(None, feed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            runs["spin" if spin else "no_spin"].append(
                {"fps": round(args.frames / wall, 1), "cpu_ms_per_frame": round(1000 * cpu / args.frames, 1)})
    print(json.dumps({"command": " ".join(sys.argv), "style": args.style, "size": args.size, **runs}, indent=2))


if __name__ == "__main__":
    main()
