"""Stylize-only speed of every network family, side by side in one run, with one and two workers.

    python bench/network_speed.py [--rounds 3] [--frames 8] [--json result/network_speed.json]
        [--network LABEL=STYLE ...] [--engine onnxruntime:fp32 ...]

Networks: ``lite`` and ``johnson`` (the bundled starry_night ones), Magenta's arbitrary network
(``starry_night.jpg``) and the 26-style network (``tf26-07``); engines: torch fp32, ONNX Runtime
fp32 and int8; frames of 640x360 and 1280x720 (random pixels; the networks' cost does not depend on
content); ``--network`` and ``--engine`` measure others, or fewer. One worker: one engine on all
cores. Two workers: two engines on one thread each, each stylizing its own frame at the same time,
as stream.py does for files on a CPU. Every configuration runs once per round, rounds in turn, and
the median round is reported, so a busy moment of a shared machine does not land on one
configuration alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from nstream.engines import create_engine  # noqa: E402
from nstream.errors import NStreamError  # noqa: E402
from nstream.models.style_spec import load_style  # noqa: E402

NETWORKS = {"lite": "starry_night_lite", "johnson": "starry_night_johnson", "magenta": "starry_night.jpg",
            "tf26": "tf26-07"}
ENGINES = (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))
SIZES = ((640, 360), (1280, 720))


def frames_per_second(engines: list, size: tuple[int, int], frames: int, style: torch.Tensor | None) -> float:
    """Frames stylized per second by ``engines`` working at once, each on ``frames`` frames."""
    width, height = size
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 255
    args = (x,) if style is None else (x, style)

    def work(engine: object) -> None:
        for _ in range(frames):
            engine.infer(*args)

    for engine in engines:  # warm-up, untimed
        engine.infer(*args)
    threads = [threading.Thread(target=work, args=(engine,)) for engine in engines]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return frames * len(engines) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8, help="frames per worker per measurement (johnson at 720p: a quarter)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--network", action="append", metavar="LABEL=STYLE",
                        help="a network to measure instead of the defaults, as -s takes it (repeat)")
    parser.add_argument("--engine", action="append", metavar="KIND:PRECISION", choices=[f"{k}:{p}" for k, p in ENGINES],
                        help="only these engines (repeat; default: all)")
    args = parser.parse_args()
    networks = dict(spec.split("=", 1) for spec in args.network) if args.network else NETWORKS
    kinds = [tuple(e.split(":")) for e in args.engine] if args.engine else ENGINES
    cores = os.cpu_count() or 1
    built = {}
    for net, spec in networks.items():
        style = load_style(spec)
        vector = None if style.vector is None else torch.from_numpy(style.vector).reshape(1, -1)
        for kind, precision in kinds:
            try:
                one = [create_engine(kind, style.model, "cpu", precision, threads=cores)]
                two = [create_engine(kind, style.model, "cpu", precision, threads=max(1, cores // 2)) for _ in range(2)]
            except NStreamError as exc:
                print(f"skipped {net} {kind} {precision}: {exc}", file=sys.stderr)
                continue
            built[(net, kind, precision)] = (one, two, vector)
    results: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for (net, kind, precision), (one, two, vector) in built.items():
            for size in SIZES:
                count = max(2, args.frames // 4) if net == "johnson" and size[0] > 640 else args.frames
                for workers, engines in ((1, one), (2, two)):
                    torch.set_num_threads(max(1, cores // workers))
                    fps = frames_per_second(engines, size, count, vector)
                    key = f"{net}|{kind} {precision}|{size[0]}x{size[1]}|{workers}"
                    results.setdefault(key, []).append(fps)
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    print("| network | engine | 640x360, 1 worker | 2 workers | 1280x720, 1 worker | 2 workers |")
    print("|---|---|---|---|---|---|")
    medians = {key: statistics.median(values) for key, values in results.items()}
    for net in networks:
        for kind, precision in kinds:
            cells = [medians.get(f"{net}|{kind} {precision}|{w}x{h}|{workers}")
                     for w, h in SIZES for workers in (1, 2)]
            if all(cell is None for cell in cells):
                continue
            print(f"| {net} | {kind} {precision} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cores": cores, "rounds": args.rounds, "frames": args.frames,
                                         "fps": results}, indent=2))


if __name__ == "__main__":
    main()
