"""Temporal-consistency benchmarks for docs/BENCHMARKS.md ("Temporal consistency").

    python bench/temporal_bench.py flow [--repeat N]              # EPE on FlyingChairs + ms/frame at 360p and 720p
    python bench/temporal_bench.py cost --style PATH [--frames N] [--threads T] [--repeat R] [--live | --encode]  # 360p
    python bench/temporal_bench.py settings --style PATH --setting LABEL=OPTIONS [--setting ...] [--repeat R] [--clip V] [--camera]
    python bench/temporal_bench.py stage [--clip V] [--frames N] [--repeat R] [--opencv-threads T]  # the stage alone

``flow``: end-point error (mean |flow - ground truth|, pixels) of each backend on the three
FlyingChairs pairs in ../shared/data/flow/flyingchairs, and the time of one flow call, and of the
whole per-frame motion step the blend runs beside the network (cut check, flow, reliability
mask, photometric check, smoothing, remap maps), on 360p and 720p frames of the demo clip.
RAFT rows appear only on a CUDA machine. ``cost``: the pipeline's throughput (file in, null out)
on a 640x360 transcode of the demo clip with ``--temporal-strength 0`` and the default strength,
each run a fresh ``stream.py`` process with its default network threads unless ``--threads`` is
given; ``--encode`` writes an H.264 file instead of ``-o null``; with ``--live`` the clip comes from
a loopback RTSP server (tests/rtsp_server.py) at 25 fps, so frames are dropped when the pipeline is
slower, and latency and unblended frames are what to read. ``settings``: any stream.py settings
against each other on that clip, alternating, each run a fresh process.
``stage``: the temporal stage on its own (motion step + blend, as the pipeline runs them, with
OpenCV's default threads), CPU time per 640x360 frame: the clip (default the demo clip) is resized
to 640x360 and encoded as a camera would (H.264, no B-frames, one reference) so that its decoded
motion vectors can be measured as the flow too; settings alternate, ``repeat`` rounds, medians.
Each prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from nstream.temporal.blend import estimate_motion  # noqa: E402
from nstream.temporal.flow import create_flow  # noqa: E402
from nstream.temporal.metrics import METRIC_FLOWS  # noqa: E402
from nstream.temporal.scenecut import SceneCutDetector  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
DEMO = ROOT / "nstream" / "assets" / "bigbuckbunny.mp4"
BACKENDS = {
    "dis/ultrafast@0.5": ("dis", {"preset": "ultrafast", "scale": 0.5}),
    "dis/fast@0.5": ("dis", {"preset": "fast", "scale": 0.5}),
    "dis/medium@0.5": ("dis", {"preset": "medium", "scale": 0.5}),
    "dis/medium@auto": ("dis", {}),
    "dis/balanced@auto (blend default)": ("dis", {"preset": "balanced"}),
    "dis/fast@1": ("dis", {"preset": "fast", "scale": 1.0}),
    "dis/medium@1": ("dis", {"preset": "medium", "scale": 1.0}),
    "dis/fine@1 (E_warp default)": ("dis", {k: v for k, v in METRIC_FLOWS["dis-fine"].items() if k != "name"}),
    "farneback@1": ("farneback", {"scale": 1.0}),
    "farneback@0.5": ("farneback", {"scale": 0.5}),
    "raft_small@1": ("raft_small", {}),
    "raft_large@1": ("raft_large", {}),
}


def read_flo(path: Path) -> np.ndarray:
    """Middlebury .flo: float32 202021.25, int32 width, int32 height, then height*width*2 float32."""
    data = path.read_bytes()
    if np.frombuffer(data[:4], np.float32)[0] != np.float32(202021.25):
        raise ValueError(f"{path} is not a .flo file")
    width, height = np.frombuffer(data[4:12], np.int32)
    return np.frombuffer(data[12:], np.float32).reshape(height, width, 2)


def demo_frames(width: int, height: int, count: int = 6) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(DEMO)) as container:
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) >= count + 40:
                break
    return frames[40:]  # past the opening fade


def bench_flow(repeat: int) -> dict:
    import torch

    from nstream.errors import NStreamError

    pairs = []
    folder = SHARED / "flow" / "flyingchairs"
    for gt in sorted(folder.glob("*-gt.flo")):
        stem = gt.name[: -len("-gt.flo")]
        a, b = (cv2.cvtColor(cv2.imread(str(folder / f"{stem}-img{i}.ppm")), cv2.COLOR_BGR2RGB) for i in (0, 1))
        pairs.append((a, b, read_flo(gt)))
    sizes = {"360p": demo_frames(640, 360), "720p": demo_frames(1280, 720)}
    rows: dict = {"zero_flow_epe": round(float(np.mean([np.linalg.norm(g, axis=2).mean() for *_, g in pairs])), 3)}
    for label, (name, options) in BACKENDS.items():
        try:
            flow = create_flow(name, **options)
        except NStreamError as exc:
            rows[label] = {"skipped": str(exc)}
            continue
        epe = [float(np.linalg.norm(flow(a, b) - g, axis=2).mean()) for a, b, g in pairs]
        row: dict = {"epe": round(float(np.mean(epe)), 3), "epe_pairs": [round(e, 3) for e in epe]}
        for size, frames in sizes.items():
            flow(frames[0], frames[1])  # warm-up
            started = time.perf_counter()
            for i in range(repeat):
                flow(frames[i % 5 + 1], frames[i % 5])
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            row[f"flow_ms_{size}"] = round(1000 * (time.perf_counter() - started) / repeat, 2)
            started = time.perf_counter()
            for i in range(repeat):
                estimate_motion(flow, frames[i % 5 + 1], frames[i % 5], SceneCutDetector())
            row[f"motion_step_ms_{size}"] = round(1000 * (time.perf_counter() - started) / repeat, 2)
        rows[label] = row
    return rows


def transcode_360p(path: Path, frames: int, camera: bool = False, source: Path = DEMO) -> Path:
    """``frames`` frames of ``source`` (default the demo clip) at 640x360, H.264. The demo clip has 132 frames:
    longer runs play a clip forwards and backwards in turn, so the motion never jumps (a jump would be a cut).
    ``camera``: encoded as a network camera does (no B-frames, one reference), so that ``--flow
    vectors`` can use its motion vectors."""
    import av

    with av.open(str(source)) as clip:
        shots = [cv2.resize(f.to_ndarray(format="rgb24"), (640, 360), interpolation=cv2.INTER_AREA)
                 for _, f in zip(range(frames), clip.decode(video=0), strict=False)]
    bounce = shots + shots[-2:0:-1]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": "0", "refs": "1"} if camera else None)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(bounce[i % len(bounce)], format="rgb24")))
        out.mux(stream.encode(None))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rtsp_server(clip: Path) -> tuple[subprocess.Popen, str]:
    """tests/rtsp_server.py (Debian's gst-rtsp-server, system python3) serving ``clip`` at its own rate."""
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests" / "rtsp_server.py"), str(clip), str(port)],
                              stdout=subprocess.PIPE, text=True)
    if server.stdout is None or server.stdout.readline().strip() != "ready":
        server.kill()
        raise SystemExit("the RTSP server did not start (apt install gir1.2-gst-rtsp-server-1.0 python3-gi)")
    return server, f"rtsp://127.0.0.1:{port}/clip"


def run_once(command: list[str], stats: Path) -> dict:
    """One fresh stream.py process; its figures and its CPU time per frame (start-up included)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"stream.py failed: {done.stderr.strip().splitlines()[-1:]}")
    snap = json.loads(stats.read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    row = {k: snap.get(k) for k in ("fps", "frames_in", "frames_out", "dropped", "engine", "workers", "temporal",
                                    "flow_ms", "unblended")}
    row["cpu_ms_per_frame"] = round(1000 * cpu / max(1, snap["frames_out"]), 1)
    row["stylize_mean_ms"] = snap["stages"]["stylize"]["mean_ms"]
    row["latency_ms"] = {k: snap["latency_ms"][k] for k in ("p50", "p95")}
    return row


def stream_command(source: str, style: str, output: str, frames: int, stats: Path, extra: list[str]) -> list[str]:
    """stream.py on ``source`` with ``style``, unless ``extra`` names its own (``-s``: settings of different styles)."""
    own_style = "-s" in extra or "--style" in extra
    return [sys.executable, str(ROOT / "stream.py"), "-i", source, *([] if own_style else ["-s", style]), "-o", output,
            "--no-dashboard", "--max-frames", str(frames), "--stats-json", str(stats), *extra]


def bench_cost(style: str, frames: int, extra: list[str], repeat: int = 1, live: bool = False,
               encode: bool = False) -> dict:
    """stream.py on a 360p clip with blending off and at the default strength, ``repeat`` rounds
    of one run each, every run a fresh process (this VM's speed drifts run to run, and in one
    process a run after a blended one came out as slow as the blended one itself: 31.8 against
    23.8 fps for identical settings). Cost: 1 - median(on) / median(off), and the median of the
    rounds' own on/off ratios (``paired_cost``), which the drift between rounds does not move.
    ``live`` reads the clip from a loopback RTSP server at its own 25 fps instead of from the file;
    ``encode`` writes an H.264 mp4 (stream.py's defaults) instead of discarding the frames."""
    from nstream.temporal.blend import DEFAULT_STRENGTH

    with tempfile.TemporaryDirectory() as tmp:
        clip = transcode_360p(Path(tmp) / "bbb360.mp4", frames)
        server, source = rtsp_server(clip) if live else (None, str(clip))
        rows: dict = {}
        stats = Path(tmp) / "stats.json"
        try:
            for round_index in range(repeat):
                for strength in ("0", f"{DEFAULT_STRENGTH:g}"):
                    output = str(Path(tmp) / f"out{round_index}_{strength}.mp4") if encode else "null"
                    command = stream_command(source, style, output, frames, stats,
                                             ["--temporal-strength", strength, *extra])
                    rows.setdefault(f"a={strength}", []).append(run_once(command, stats))
        finally:
            if server is not None:
                server.kill()
        off_runs, on_runs = ([r["fps"] for r in runs] for runs in rows.values())
        rows["cost"] = round(1 - float(np.median(on_runs)) / float(np.median(off_runs)), 3)
        rows["paired_cost"] = round(1 - float(np.median([on / off for on, off in zip(on_runs, off_runs, strict=True)])), 3)
        return rows


def bench_settings(style: str, frames: int, settings: list[str], repeat: int, camera: bool = False,
                   source: Path = DEMO) -> dict:
    """Several stream.py settings (``LABEL=OPTIONS``) on the 360p clip, -o null, in alternating order
    (reversed every other round) so that the machine's drift falls on all of them alike; median fps
    and CPU per frame of each, and its fps relative to the first setting's."""
    parsed = [(label, options.split()) for label, _, options in (s.partition("=") for s in settings)]
    runs: dict[str, list[dict]] = {label: [] for label, _ in parsed}
    with tempfile.TemporaryDirectory() as tmp:
        clip = transcode_360p(Path(tmp) / "clip360.mp4", frames, camera, source)
        stats = Path(tmp) / "stats.json"
        for round_index in range(repeat):
            for label, options in parsed if round_index % 2 == 0 else parsed[::-1]:
                runs[label].append(run_once(stream_command(str(clip), style, "null", frames, stats, options), stats))
    first = float(np.median([r["fps"] for r in runs[parsed[0][0]]]))
    summary = {}
    for label, rows in runs.items():
        fps = [r["fps"] for r in rows]
        summary[label] = {"fps_median": round(float(np.median(fps)), 2), "fps_runs": fps,
                          "vs_first": round(float(np.median(fps)) / first - 1, 3),
                          "cpu_ms_per_frame_median": round(float(np.median([r["cpu_ms_per_frame"] for r in rows])), 1),
                          "workers": rows[0]["workers"], "temporal": rows[0]["temporal"]}
    return summary


def camera_clip(source: Path, path: Path, frames: int) -> tuple[list[np.ndarray], list]:
    """``frames`` frames of ``source`` at 640x360, encoded as a network camera does (:func:`transcode_360p`
    with ``camera``) and decoded back with their motion vectors: (frames, vectors per frame)."""
    import av

    from nstream.temporal.vectors import frame_vectors

    transcode_360p(path, frames, camera=True, source=source)
    images, vectors = [], []
    with av.open(str(path)) as clip:
        clip.streams.video[0].codec_context.options = {"flags2": "+export_mvs"}
        for frame in clip.decode(video=0):
            images.append(frame.to_ndarray(format="rgb24"))
            vectors.append(frame_vectors(frame))
    return images, vectors


def stage_settings() -> dict:
    """label -> (flow factory, estimate_motion keywords) for :func:`bench_stage`."""
    from nstream.temporal.blend import FIXED
    from nstream.temporal.vectors import VectorFlow

    def balanced() -> object:
        return create_flow("dis", preset="balanced")

    return {
        "before issue 19 (coarse DIS medium, fixed check)": (lambda: create_flow("dis"),
                                                              {"refine": False, "photo": FIXED}),
        "DIS medium, refined (default until stop 15)": (lambda: create_flow("dis"), {}),
        "DIS balanced, refined, whole frame (default until stop 18)": (balanced, {}),
        "DIS balanced, refined, still-camera shortcuts (default)": (balanced, {"camera": True}),
        "DIS balanced without refinement": (balanced, {"refine": False}),
        "motion vectors, balanced refinement": (lambda: VectorFlow(balanced()), {}),
        "motion vectors, balanced refinement, still-camera shortcuts": (lambda: VectorFlow(balanced()), {"camera": True}),
        "motion vectors, no refinement": (lambda: VectorFlow(balanced()), {"refine": False}),
    }


def stage_once(frames: list[np.ndarray], vectors: list, make_flow, options: dict) -> tuple[float, float]:
    """CPU ms per frame of estimate_motion + blend over the clip (history = the inverted frames), and of
    the flow call alone inside it."""
    from nstream.temporal.blend import blend
    from nstream.temporal.still import StillCamera
    from nstream.temporal.vectors import CodedVectors

    flow = make_flow()
    detector, history, cpu, flow_cpu = SceneCutDetector(), 255 - frames[0], 0.0, 0.0
    options = dict(options)
    camera = StillCamera() if options.pop("camera", False) else None
    compute = flow.compute

    def timed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        nonlocal flow_cpu
        started = time.process_time()
        result = compute(a, b)
        flow_cpu += time.process_time() - started
        return result

    flow.compute = timed
    for t in range(1, len(frames)):
        styled = 255 - frames[t]
        started = time.process_time()
        if hasattr(flow, "use"):
            flow.use(None if vectors[t] is None else CodedVectors(vectors[t], *frames[t].shape[:2]))
        motion = estimate_motion(flow, frames[t], frames[t - 1], detector, **options, camera=camera)
        history = blend(styled, history, motion, 0.7) if motion.cut is None else styled
        cpu += time.process_time() - started
    return 1000 * cpu / (len(frames) - 1), 1000 * flow_cpu / (len(frames) - 1)


def bench_stage(clip: Path, frames: int, repeat: int) -> dict:
    """The temporal stage alone on 640x360 frames: median CPU ms per frame of each setting, and of DIS
    ultrafast alone at the blend's working size (the issue's 8 ms reference)."""
    with tempfile.TemporaryDirectory() as tmp:
        images, vectors = camera_clip(clip, Path(tmp) / "camera.mp4", frames)
    settings = stage_settings()
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in settings}
    for round_index in range(repeat):
        for label in list(settings) if round_index % 2 == 0 else list(settings)[::-1]:
            runs[label].append(stage_once(images, vectors, *settings[label]))
    ultrafast = create_flow("dis", preset="ultrafast")
    small = [ultrafast.shrink(image) for image in images]
    started = time.process_time()
    for t in range(1, len(small)):
        ultrafast.compute(small[t], small[t - 1])
    rows: dict = {"clip": str(clip), "frames": len(images), "size": "640x360",
                  "p_frames_with_vectors": sum(v is not None and len(v) > 0 for v in vectors[1:]),
                  "dis_ultrafast_alone_ms": round(1000 * (time.process_time() - started) / (len(small) - 1), 2)}
    for label, values in runs.items():
        rows[label] = {"cpu_ms_per_frame": round(float(np.median([v[0] for v in values])), 2),
                       "flow_ms": round(float(np.median([v[1] for v in values])), 2)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    flow = sub.add_parser("flow")
    flow.add_argument("--repeat", type=int, default=10)
    cost = sub.add_parser("cost")
    cost.add_argument("--style", required=True)
    cost.add_argument("--frames", type=int, default=100)
    cost.add_argument("--threads", type=int, help="stream.py --threads for both runs (default: stream.py's own)")
    cost.add_argument("--repeat", type=int, default=1, help="alternate off/on runs this many times")
    cost.add_argument("--stream-args", default="", help="more stream.py options for both runs, e.g. '--flow-preset fast'")
    cost.add_argument("--live", action="store_true", help="read the clip from a loopback RTSP server (live mode)")
    cost.add_argument("--encode", action="store_true", help="write an H.264 mp4 instead of -o null")
    settings = sub.add_parser("settings")
    settings.add_argument("--style", required=True)
    settings.add_argument("--frames", type=int, default=300)
    settings.add_argument("--repeat", type=int, default=5, help="rounds; each runs every setting once")
    settings.add_argument("--setting", action="append", required=True, metavar="LABEL=OPTIONS",
                          help="repeatable: a label and the stream.py options of one setting, e.g. 'off=--temporal-strength 0'")
    settings.add_argument("--clip", type=Path, default=DEMO, help="video to resize to 640x360 (default: the demo clip)")
    settings.add_argument("--camera", action="store_true",
                          help="encode the clip as a network camera does (no B-frames): for --flow vectors")
    stage = sub.add_parser("stage")
    stage.add_argument("--clip", type=Path, default=DEMO, help="video to resize to 640x360 (default: the demo clip)")
    stage.add_argument("--frames", type=int, default=60)
    stage.add_argument("--repeat", type=int, default=3, help="rounds; each runs every setting once")
    stage.add_argument("--opencv-threads", type=int, default=None,
                       help="cv2.setNumThreads (default: OpenCV's own, 2 here): 1 counts the work without the thread "
                            "pool's overhead, which nearly doubles the CPU time of small calls on 2 idle cores")
    args = parser.parse_args()
    if args.command in ("stage", "settings") and not args.clip.is_file():
        raise SystemExit(f"error: clip not found: {args.clip}")
    if args.command == "stage":
        if args.opencv_threads is not None:
            cv2.setNumThreads(args.opencv_threads)
        result = bench_stage(args.clip, args.frames, args.repeat)
    elif args.command == "flow":
        result = bench_flow(args.repeat)
    elif args.command == "settings":
        result = bench_settings(args.style, args.frames, args.setting, args.repeat, args.camera, args.clip)
    else:
        extra = (["--threads", str(args.threads)] if args.threads else []) + args.stream_args.split()
        result = bench_cost(args.style, args.frames, extra, args.repeat, args.live, args.encode)
    print(json.dumps({"command": " ".join(sys.argv), "cpus": __import__("os").cpu_count(), **result}, indent=2))


if __name__ == "__main__":
    main()
