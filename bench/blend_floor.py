"""What blending costs the pipeline at the least: throughput with the motion step replaced by no work at all.

    python bench/blend_floor.py [--clip V] [--camera] [--style the_scream_lite] [--frames 400] [--repeat 3]

Four settings, each a fresh ``stream.py`` process on the clip at 640x360 (``-o null``), in alternating
order: ``off`` (``--temporal-strength 0``); ``mix``: the temporal stage with a motion step that costs
nothing and says "a still scene, nothing moved" (the blend's cheapest path: one uniform mix and the
contrast gain per frame, no flow, no warp); ``warp``: a free motion step that says "zero flow
everywhere, every pixel reliable" (one whole-frame bicubic warp and the per-pixel mix: what the blend
does on a moving camera after its flow, with the flow and its checks for free); ``real``: the stage as
shipped. The ratio of each to ``off`` (median of the rounds' own ratios) bounds what any motion
estimate could reach: a flow-guided blend on a moving camera cannot beat ``warp``'s. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from temporal_bench import DEMO, run_once, stream_command, transcode_360p  # noqa: E402

SETTINGS = ("off", "mix", "warp", "real")


def free_motion(mode: str) -> None:
    """Replace the temporal stage's motion step by a precomputed one (``mix`` or ``warp``, see above)."""
    import cv2
    import numpy as np

    from nstream.temporal import stream
    from nstream.temporal.blend import Motion
    from nstream.temporal.warp import identity_grid

    made: dict[tuple[int, int], Motion] = {}

    def motion(self: object, current: np.ndarray, previous: np.ndarray, vectors: object = None) -> Motion:
        size = current.shape[:2]
        if size not in made:
            weight = np.ones(size, np.float32)
            if mode == "mix":
                made[size] = Motion(None, weight, reliable=1.0, patches=[], uniform=True)
            else:
                made[size] = Motion(cv2.convertMaps(identity_grid(*size), None, cv2.CV_16SC2), weight, reliable=1.0)
        return made[size]

    stream.TemporalStage._motion = motion


def child(mode: str, arguments: list[str]) -> int:
    """One stream.py run with the motion step ``mode`` (``real``: untouched)."""
    from nstream.cli import stream_main

    if mode in ("mix", "warp"):
        free_motion(mode)
    return stream_main(arguments)


def bench(clip: Path, camera: bool, style: str, frames: int, repeat: int) -> dict:
    runs: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        video = transcode_360p(Path(tmp) / "clip360.mp4", frames, camera, clip)
        stats = Path(tmp) / "stats.json"
        for round_index in range(repeat):
            for name in SETTINGS if round_index % 2 == 0 else SETTINGS[::-1]:
                extra = ["--temporal-strength", "0"] if name == "off" else []
                command = stream_command(str(video), style, "null", frames, stats, extra)
                command[1:2] = [__file__, "--as", name, "--"]  # this script, as stream.py with the step replaced
                runs[name].append(run_once(command, stats)["fps"])
    rows: dict = {"clip": str(clip), "camera": camera, "style": style, "frames": frames, "repeat": repeat}
    for name in SETTINGS:
        ratios = [on / off for on, off in zip(runs[name], runs["off"], strict=True)]
        rows[name] = {"fps_median": round(statistics.median(runs[name]), 1), "fps_runs": runs[name],
                      "of_off": round(statistics.median(ratios), 3)}
    return rows


def main() -> None:
    if sys.argv[1:2] == ["--as"]:
        sys.exit(child(sys.argv[2], sys.argv[4:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEMO, help="video to resize to 640x360 (default: the demo clip)")
    parser.add_argument("--camera", action="store_true", help="encode it as a network camera does")
    parser.add_argument("--style", default="the_scream_lite")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.clip.exists():
        raise SystemExit(f"error: no such clip: {args.clip}")
    rows = bench(args.clip, args.camera, args.style, args.frames, args.repeat)
    print(json.dumps({"command": " ".join(["bench/blend_floor.py", *sys.argv[1:]]), **rows}, indent=2))


if __name__ == "__main__":
    main()
