"""Pipeline benchmarks for docs/BENCHMARKS.md: is decode/encode hidden behind inference?

    python bench/pipeline_bench.py throughput --input CLIP [--max-frames N] [--style NAME]
    python bench/pipeline_bench.py live --input CLIP [--max-frames N]
    python bench/pipeline_bench.py memory --input CLIP --loop N [--scale F]

``throughput`` measures, on the same clip and model in one run: the stylize stage alone
(frames decoded beforehand, in memory), the threaded pipeline (file in, x264 file out) and the
plain sequential loop most style-transfer repos use (read, stylize, write, repeat).
``live`` runs the pipeline on a ``--live`` paced source and compares its latency with the
engine's own time per frame. ``memory`` samples resident memory over a long looped run.
Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av  # noqa: E402

from nstream.cli import run_stream, stream_parser  # noqa: E402
from nstream.engines import create_engine  # noqa: E402
from nstream.media.sinks import open_sink  # noqa: E402
from nstream.media.sources import FileSource  # noqa: E402
from nstream.models.checkpoints import load_style_model  # noqa: E402
from nstream.models.registry import resolve_style  # noqa: E402
from nstream.stylizer import Stylizer  # noqa: E402


def _stylizer(style: str, engine: str) -> Stylizer:
    model, _ = load_style_model(resolve_style(style).path)
    return Stylizer(create_engine(engine, model, "auto", "auto"))


def _decoded(path: str, max_frames: int) -> list:
    source = FileSource(path)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) >= max_frames:
            break
    source.close()
    return frames


def stage_alone(stylizer: Stylizer, frames: list, repeats: int = 2) -> float:
    """Best of ``repeats`` passes over frames already in memory, after a few warm-up frames."""
    for frame in frames[:5]:
        stylizer(frame.image)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for frame in frames:
            stylizer(frame.image)
        best = max(best, len(frames) / (time.perf_counter() - started))
    return best


def sequential_loop(stylizer: Stylizer, path: str, max_frames: int, out: str) -> float:
    """The usual loop: one thread, read -> stylize -> write, repeat."""
    source = FileSource(path)
    sink = open_sink(out)
    sink.open(source.info)
    started, count = time.perf_counter(), 0
    for frame in source.frames():
        frame.image = stylizer(frame.image)
        sink.write(frame)
        count += 1
        if count >= max_frames:
            break
    sink.close()
    source.close()
    return count / (time.perf_counter() - started)


def pipeline_run(extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "stats.json"
        args = stream_parser().parse_args([*extra, "--no-dashboard", "--stats-json", str(stats)])
        run_stream(args)
        return json.loads(stats.read_text())


def _common(args: argparse.Namespace) -> list[str]:
    """The same engine as the stage-alone run; temporal blending only when asked for."""
    return ["--engine", args.engine, "--temporal-strength", str(args.temporal_strength)]


def throughput(args: argparse.Namespace) -> dict:
    stylizer = _stylizer(args.style, args.engine)
    frames = _decoded(args.input, args.max_frames)
    height, width = frames[0].image.shape[:2]
    alone = stage_alone(stylizer, frames)
    with tempfile.TemporaryDirectory() as tmp:
        sequential = sequential_loop(stylizer, args.input, args.max_frames, str(Path(tmp) / "seq.mp4"))
        stats = pipeline_run(["-i", args.input, "-o", str(Path(tmp) / "pipe.mp4"), "-s", args.style, "--no-audio",
                              "--max-frames", str(args.max_frames), *_common(args)])
    piped = stats["fps"]
    return {"resolution": f"{width}x{height}", "frames": len(frames), "stylize_alone_fps": round(alone, 2),
            "pipeline_fps": piped, "pipeline_over_alone": round(piped / alone, 3),
            "sequential_fps": round(sequential, 2), "pipeline_over_sequential": round(piped / sequential, 3),
            "stage_ms": {k: v["mean_ms"] for k, v in stats["stages"].items()}}


def live(args: argparse.Namespace) -> dict:
    stats = pipeline_run(["-i", args.input, "--live", "-o", "null", "-s", args.style, "--max-frames", str(args.max_frames),
                          *_common(args)])
    return {"frames_in": stats["frames_in"], "frames_out": stats["frames_out"], "dropped": stats["dropped"],
            "engine_ms": stats["stages"]["stylize"]["mean_ms"], "latency_ms": stats["latency_ms"]}


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(args: argparse.Namespace) -> dict:
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(2.0):
            samples.append((round(time.monotonic() - started, 1), round(_rss_mib(), 1)))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    extra = ["-i", args.input, "-o", "null", "-s", args.style, "--loop", str(args.loop), *_common(args)]
    if args.scale:
        extra += ["--scale", str(args.scale)]
    stats = pipeline_run(extra)
    done.set()
    thread.join()
    return {"frames": stats["frames_out"], "seconds": stats["elapsed_s"], "rss_mib_first": samples[0] if samples else None,
            "rss_mib_after_warmup": samples[min(5, len(samples) - 1)] if samples else None,
            "rss_mib_last": samples[-1] if samples else None, "rss_mib_max": max(s[1] for s in samples) if samples else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("throughput", "live", "memory"))
    parser.add_argument("--input", required=True)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--max-frames", type=int, default=60)
    parser.add_argument("--loop", type=int, default=20)
    parser.add_argument("--scale", type=float)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--temporal-strength", type=float, default=0.0,
                        help="0 (default) compares the network alone; the stage-alone figure never blends")
    args = parser.parse_args()
    result = {"mode": args.mode, "input": Path(args.input).name, "av": av.__version__,
              **{"throughput": throughput, "live": live, "memory": memory}[args.mode](args)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
