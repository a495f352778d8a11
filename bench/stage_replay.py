"""The temporal stage replayed over cached per-frame stylizations: flicker and CPU of settings, one run.

    python bench/stage_replay.py --clip vtest.avi --camera --setting "default=" \
        --setting "vectors=--flow vectors" [--frames 60] [--style starry_night_lite] [--cache DIR]

A setting is a label and ``stream.py`` temporal options. For each clip (resized to 640 wide; with
``--camera``, 640x360 re-encoded as a network camera sends it, so the decoder's motion vectors exist),
the per-frame stylizations and the two judges' flows (dis-fine and Farneback, as ``nstream eval``)
are computed once (kept in ``--cache``), then every setting runs the real :class:`TemporalStage`
(file mode) over them, in turns, ``--repeat`` times. Reported per setting: E_warp change against
per-frame over all and over moving pixels by both judges, and the stage's CPU ms per frame
(process time, which counts the flow worker thread too; OpenCV's default threads; the median
of the repeats). Last, each judge's floor: what it gives an output steady by construction (each
pair's second frame is the first moved along dis-fine's flow, the most accurate here), as a share
of per-frame E_warp: no blend can score below it by that judge. Prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import shlex
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from nstream.temporal.evaluate import MOVING_PX, read_video  # noqa: E402
from nstream.temporal.metrics import measure_pairs, metric_flow, pair_warping_errors  # noqa: E402

JUDGES = ("dis-fine", "farneback")


def load_clip(path: str, frames: int, camera: bool) -> tuple[list[np.ndarray], list]:
    """RGB frames (640 wide) and their coded motion vectors."""
    from temporal_bench import camera_clip

    from nstream.temporal.vectors import CodedVectors

    if camera:
        with tempfile.TemporaryDirectory() as tmp:
            images, raw = camera_clip(Path(path), Path(tmp) / "camera.mp4", frames)
        return images, [None if v is None else CodedVectors(v, *images[0].shape[:2]) for v in raw]
    images, vectors = read_video(path, frames, 640, motion_vectors=True)
    return images, vectors


def stylize_all(frames: list[np.ndarray], style_name: str) -> list[np.ndarray]:
    from nstream.engines import create_engine
    from nstream.models.style_spec import load_style
    from nstream.stylizer import Stylizer

    style = load_style(style_name)
    engine = create_engine("auto", style.model, "cpu", "auto")
    stylizer = Stylizer(engine, style=style.vector)
    return [stylizer(image) for image in frames]


def prepared(args: argparse.Namespace) -> dict:
    """Frames, vectors, per-frame stylizations and judge pairs, from the cache when there."""
    key = hashlib.sha1(f"{Path(args.clip).resolve()} {args.frames} {args.camera} {args.style}".encode()).hexdigest()[:12]
    cache = Path(args.cache) / f"replay-{key}.pkl"
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    frames, vectors = load_clip(args.clip, args.frames, args.camera)
    data = {"frames": frames, "vectors": vectors, "styled": stylize_all(frames, args.style),
            "pairs": {judge: measure_pairs(frames, metric_flow(judge)) for judge in JUDGES}}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(data))
    return data


def run_setting(data: dict, options: list[str]) -> tuple[list[np.ndarray], float]:
    """The blended frames and the stage's CPU ms per frame for one setting."""
    from nstream.cli import stream_parser, temporal_config
    from nstream.frames import Frame
    from nstream.temporal.config import build_temporal_stage

    config = temporal_config(stream_parser().parse_args(["-i", "x", *options]))
    stage = build_temporal_stage(config, live=False)
    outputs = []
    started = time.process_time()
    for index, (image, styled) in enumerate(zip(data["frames"], data["styled"], strict=True)):
        frame = Frame(image, index, index, Fraction(1, 25), time.monotonic(), vectors=data["vectors"][index])
        stage.prepare(frame)
        frame.image = styled
        outputs.append(stage.process(frame).image)
    stage.close()
    return outputs, 1000 * (time.process_time() - started) / (len(outputs) - 1)


def change(outputs: list[np.ndarray], reference: list[np.ndarray], pairs: list, min_motion: float) -> float:
    blended = np.mean(pair_warping_errors(outputs, pairs, min_motion))
    off = np.mean(pair_warping_errors(reference, pairs, min_motion))
    return 100 * (blended - off) / off


def judge_floor(data: dict, judge: str) -> float:
    """E_warp by ``judge`` of pairs (O_t, O_t moved to t+1 along dis-fine's flow), over per-frame E_warp."""
    from nstream.temporal.warp import warp

    fine, errors = metric_flow("dis-fine"), []
    frames, styled = data["frames"], data["styled"]
    for t, pair in enumerate(data["pairs"][judge]):
        if pair is not None:
            steady = [styled[t], warp(styled[t], fine(frames[t + 1], frames[t]))]
            errors += pair_warping_errors(steady, [pair])
    return float(np.mean(errors) / np.mean(pair_warping_errors(styled, data["pairs"][judge])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--camera", action="store_true", help="640x360, re-encoded camera-style (motion vectors)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--style", default="starry_night_lite")
    parser.add_argument("--setting", action="append", required=True, help="LABEL=stream.py temporal options")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cache", default="result/stage_replay")
    args = parser.parse_args()
    data = prepared(args)
    settings = [(s.split("=", 1)[0], shlex.split(s.split("=", 1)[1])) for s in args.setting]
    outputs: dict[str, list[np.ndarray]] = {}
    cpu: dict[str, list[float]] = {label: [] for label, _ in settings}
    for round_index in range(args.repeat):
        for label, options in settings if round_index % 2 == 0 else settings[::-1]:
            outputs[label], ms = run_setting(data, options)
            cpu[label].append(ms)
    height, width = data["frames"][0].shape[:2]
    print(f"{Path(args.clip).name} ({len(data['frames'])} frames, {width}x{height}{', camera-style' if args.camera else ''}),"
          f" {args.style}; E_warp change against per-frame, all / moving pixels\n")
    print("| setting | dis-fine | Farneback | stage CPU ms per frame |\n|---|---|---|---|")
    for label, _ in settings:
        cells = [" / ".join(f"{change(outputs[label], data['styled'], data['pairs'][judge], m):+.1f} %"
                            for m in (0.0, MOVING_PX)) for judge in JUDGES]
        print(f"| {label} | {cells[0]} | {cells[1]} | {np.median(cpu[label]):.2f} |")
    floors = ", ".join(f"{judge} {100 * judge_floor(data, judge):.0f} %" for judge in JUDGES)
    print(f"\nan output steady by construction scores, of per-frame E_warp: {floors}")


if __name__ == "__main__":
    main()
