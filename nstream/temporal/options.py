"""Command-line options of the temporal stage and the hook that puts it into ``stream.py``.

``cli.stream_parser()`` calls :func:`add_arguments`; ``cli.run_stream`` calls :func:`wrap_stylize`
on its per-frame stylize callable. Both are here so the CLI needs two one-line hooks only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.temporal.blend import CHECKS, DEFAULT_CHECK, DEFAULT_STRENGTH, MAX_STRENGTH
from nstream.temporal.flow import DIS_PRESETS, FLOWS, create_flow
from nstream.temporal.scenecut import DEFAULT_CUT_THRESHOLD


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``temporal consistency`` option group."""
    group = parser.add_argument_group("temporal consistency")
    group.add_argument("--temporal-strength", type=float, default=DEFAULT_STRENGTH, metavar="A",
                       help=f"0..{MAX_STRENGTH}: weight of the flow-warped previous output where the flow is reliable "
                            f"(0 = off; default {DEFAULT_STRENGTH})")
    group.add_argument("--flow", default="dis", choices=FLOWS,
                       help="optical flow for blending: dis (CPU, default), vectors (the motion vectors of a file or "
                            "network stream without B-frames, refined by DIS around moving subjects; DIS where a frame "
                            "has none), farneback (CPU), raft_small/raft_large (CUDA)")
    group.add_argument("--flow-scale", type=float, default=None,
                       help="fraction of the frame size the flow runs at (default for dis: half size, but 320 to 640 px "
                            "wide; 1 for the others)")
    group.add_argument("--flow-preset", default="medium", choices=tuple(DIS_PRESETS),
                       help="DIS preset (default medium; fast takes a third of its flow time and removes a third less "
                            "flicker on fast motion)")
    group.add_argument("--occlusion-check", default=DEFAULT_CHECK, choices=CHECKS,
                       help="how the blend finds pixels the history must not fill: photometric (default: motion "
                            "boundaries, frame exits, the warped previous input against the current one) or "
                            "consistency (adds the forward-backward flow check: a second flow per frame)")
    group.add_argument("--no-restore-contrast", action="store_true",
                       help="leave the blended frame as flat as averaging makes it (default: give it back the fresh "
                            "stylization's global contrast, one gain per frame)")
    group.add_argument("--no-refine-moving", action="store_true",
                       help="keep the downscaled flow on moving subjects too (default: recompute it at full size in the "
                            "boxes around them, so that people and cars get blended; ~3-4 ms of CPU per 360p frame)")
    group.add_argument("--mask-smoothing", type=float, default=None, metavar="SIGMA",
                       help="Gaussian blur of the reliability mask in pixels (default: frame height / 240, at least 1; "
                            "0 keeps its hard edges)")
    group.add_argument("--scene-cut", type=float, default=DEFAULT_CUT_THRESHOLD, metavar="T",
                       help=f"colour-histogram distance (0..1) above which a frame starts a new shot and the "
                            f"history is dropped (default {DEFAULT_CUT_THRESHOLD})")
    group.add_argument("--no-scene-cuts", action="store_true", help="never reset the history on a histogram jump")


def flow_from_args(args: argparse.Namespace, device: str = "cpu") -> Any:
    """The blending flow backend the options ask for."""
    options: dict[str, Any] = {}
    if args.flow_scale is not None:
        options["scale"] = args.flow_scale
    if args.flow in ("dis", "vectors"):
        options["preset"] = args.flow_preset
    elif args.flow.startswith("raft"):
        options["device"] = device if str(device).startswith("cuda") else "cuda"
    return create_flow(args.flow, **options)


def wrap_stylize(stylize: Callable[[Frame], Frame], args: argparse.Namespace, live: bool, stats: Any = None,
                 device: str = "cpu") -> Callable[[Frame], Frame]:
    """``stylize`` with flow-guided blending, or ``stylize`` itself when ``--temporal-strength 0``."""
    from nstream.temporal.blend import check_strength
    from nstream.temporal.stream import TemporalStylizer

    strength = check_strength(getattr(args, "temporal_strength", 0.0))
    if strength == 0:
        if stats is not None:
            stats.info["temporal"] = "off"
        return stylize
    threshold = None if args.no_scene_cuts else args.scene_cut
    if threshold is not None and not 0 < threshold <= 1:
        raise NStreamError(f"--scene-cut {threshold} is out of range: use 0 < T <= 1, or --no-scene-cuts")
    smoothing = getattr(args, "mask_smoothing", None)
    if smoothing is not None and not 0 <= smoothing <= 50:
        raise NStreamError(f"--mask-smoothing {smoothing} is out of range: use 0 to 50 pixels")
    return TemporalStylizer(stylize, flow_from_args(args, device), strength, live=live, cut_threshold=threshold,
                            smoothing=smoothing, stats=stats, check=getattr(args, "occlusion_check", DEFAULT_CHECK),
                            contrast=not getattr(args, "no_restore_contrast", False),
                            refine=not getattr(args, "no_refine_moving", False))
