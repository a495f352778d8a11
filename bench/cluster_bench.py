"""Cluster measurements for docs/BENCHMARKS.md: what a chunk seam costs, and the speed-up of workers.

    python bench/cluster_bench.py seams [--clip C] [--frames 24] [--chunk 6] [--warmups 0,1,2,4]
    python bench/cluster_bench.py speed [--clip C] [--frames 24]

``seams`` renders one shot with offline.py four ways (whole; chunked with each warm-up) in this
process (``--shots``: exactly the frames a cluster gives) and reports E_warp (Lai et al., DIS flow
on the input, nstream.temporal.metrics) of the pairs that straddle a chunk seam against the pairs
inside chunks, and against the same pairs of the unchunked render. ``speed`` times the same render
and a batch job in one process and on a local Ray with 2 workers, and prints per-frame seconds.
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
CARPHONE = ROOT.parent / "shared" / "data" / "video" / "carphone.mp4"
BIKES = ROOT.parent / "shared" / "data" / "video" / "bikes.mp4"


def offline(clip: Path, out: Path, frames: int, size: int, iters: str, *extra: str) -> float:
    """Run offline.py; its wall seconds (0 when ``out`` is there from an earlier run: measured again only)."""
    if out.exists():
        return 0.0
    style = ROOT / "nstream" / "paintings" / "starry_night.jpg"
    command = [sys.executable, str(ROOT / "offline.py"), "-c", str(clip), "-s", str(style), "-o", str(out),
               "--limit-frames", str(frames), "-z", str(size), "-i", iters, "--loss-net", "random", "--threads", "1",
               "--no-progress", "-e", "0", "--no-scene-cuts", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def pair_errors(work: Path, count: int, spans: list) -> tuple[list[float], list[float]]:
    """E_warp of every consecutive pair (DIS flow on the content frames): of the finished frames as the
    chunks left them, and of the output (seams cross-faded over the warm-up frames)."""
    from nstream.cluster.offline import output_frame
    from nstream.optimize.workfolder import WorkFolder, read_png
    from nstream.temporal.metrics import measure_pairs, pair_warping_errors

    folder = WorkFolder(work)
    content = [read_png(work / "content" / f"{i:06d}.png") for i in range(count)]
    raw = [read_png(work / "pass1" / f"{i:06d}.png") for i in range(count)]
    faded = [output_frame(folder, spans, 1, i) for i in range(count)]
    pairs = measure_pairs(content, cut_threshold=None)
    return tuple([pair_warping_errors(frames[t:t + 2], [pair])[0] for t, pair in enumerate(pairs)]
                 for frames in (raw, faded))


def seams(args: argparse.Namespace) -> dict:
    """Seam vs inside E_warp for each warm-up, and the unchunked render's at the same pairs."""
    from nstream.cluster.offline import plan_spans

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seam_pairs = [b - 1 for b in range(args.chunk, args.frames, args.chunk)]  # pair t joins frames t and t+1
    inside = [t for t in range(args.frames - 1) if all(not b - 5 <= t <= b for b in seam_pairs)]
    everything = list(range(args.frames - 1))
    rows = {}
    for warm in [None, *args.warmups]:
        name = "whole" if warm is None else f"chunk{args.chunk}_warm{warm}"
        extra = ["--shots"] + ([] if warm is None else ["--chunk", str(args.chunk), "--warmup", str(warm)])
        seconds = offline(args.clip, out / f"{name}.mp4", args.frames, args.size, args.iters, *extra)
        spans = plan_spans(args.frames, [0], None if warm is None else args.chunk, warm or 0)
        raw, faded = pair_errors(out / f"{name}.mp4.work", args.frames, spans)
        rows[name] = {"seconds": round(seconds, 1), "inside": mean(raw, inside), "seam_raw": mean(raw, seam_pairs),
                      "all_raw": mean(raw, everything), "all_faded": mean(faded, everything),
                      "worst_pair_faded": round(max(faded), 5)}
    return {"clip": str(args.clip), "frames": args.frames, "size": args.size, "iters": args.iters, "chunk": args.chunk,
            "seam_pairs": seam_pairs, "inside_pairs": inside, "rows": rows}


def mean(values: list[float], indices: list[int]) -> float:
    return round(float(np.mean([values[i] for i in indices])), 5)


def speed(args: argparse.Namespace) -> dict:
    """Wall time in one process against a local Ray with 2 workers (2 CPUs), offline and batch."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    one = offline(args.clip, out / "one.mp4", args.frames, args.size, args.iters, "--shots", "--chunk", str(args.chunk))
    two = offline(args.clip, out / "two.mp4", args.frames, args.size, args.iters, "--cluster", "auto", "--num-cpus",
                  "2", "--chunk", str(args.chunk))
    records = [json.loads(line) for line in (out / "one.mp4.work" / "frames.jsonl").read_text().splitlines()]
    result["offline"] = {"one_process_s": round(one, 1), "ray_2_workers_s": round(two, 1),
                         "speedup": round(one / two, 2),
                         "frame_s_median": round(float(np.median([r["seconds"] for r in records])), 2)}
    batch = [sys.executable, "-m", "nstream", "batch", str(BIKES), "--out", str(out / "batch1"), "--split", "shots",
             "--piece-frames", "30", "--size", "320x136"]
    started = time.perf_counter()
    subprocess.run(batch, check=True, capture_output=True, cwd=ROOT)
    single = time.perf_counter() - started
    batch[batch.index(str(out / "batch1"))] = str(out / "batch2")
    started = time.perf_counter()
    subprocess.run([*batch, "--cluster", "auto", "--num-cpus", "2", "--workers", "1", "--threads", "1"], check=True,
                   capture_output=True, cwd=ROOT)
    ray_two = time.perf_counter() - started
    result["batch"] = {"clip": str(BIKES), "one_process_s": round(single, 1), "ray_2_workers_s": round(ray_two, 1),
                       "speedup": round(single / ray_two, 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("seams", "speed"))
    parser.add_argument("--clip", type=Path, default=CARPHONE)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iters", default="20,10")
    parser.add_argument("--chunk", type=int, default=6)
    parser.add_argument("--warmups", type=lambda t: [int(v) for v in t.split(",")], default=[0, 1, 2, 4])
    parser.add_argument("--out", default="/tmp/nstream-cluster-bench")
    args = parser.parse_args()
    print(json.dumps(seams(args) if args.what == "seams" else speed(args), indent=1))


if __name__ == "__main__":
    main()
