"""``python -m nstream eval VIDEO --style NAME``: how much the temporal blend steadies a video, at what cost.

Stylizes the first ``--max-frames`` frames of VIDEO twice, without blending and with it
(``--temporal-strength``), and prints per setting the warping error E_warp (measured with
a finer DIS flow than the one that blends, or Farneback), the style fidelity (Gram style loss against the
style image through a seeded random VGG16 unless ``--loss-net imagenet``, or ``magenta``: no
ImageNet VGG weights can be downloaded here) and the frames per second of stylize + blend. The input's own E_warp is
printed as the floor, and with it the share of the *excess* flicker the blend removed,
(E_off - E_blended) / (E_off - E_input). Every E_warp is also given over the moving pixels alone
(the judge's flow moves them more than ``MOVING_PX``): people and cars, where viewers look and
where a reliability mask that fails on moving bodies leaves the flicker. So is the blend's
coverage: the mean reliability weight m, over all pixels and over the moving ones. Pictures go to
``--out``: ``strip.png`` (consecutive frames: input, off, blended) and ``diff.png`` (|O_t -
warp(O_{t+1})| x4 for off and blended: flicker shows bright; then the mask: the input greyed, green
where the history was blended in, red where it was not).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nstream.errors import NStreamError
from nstream.temporal.blend import DEFAULT_STRENGTH

ROOT = Path(__file__).resolve().parent.parent.parent
MOVING_PX = 1.0  # "moving" pixels: the judge's flow moves them more than this between frames


def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``python -m nstream eval``."""
    from nstream.cli import add_temporal_arguments
    from nstream.lossnet import LOSS_NETS
    from nstream.models.registry import DEFAULT_STYLE
    from nstream.temporal.metrics import DEFAULT_METRIC_FLOW, METRIC_FLOWS

    p.add_argument("video", help="video file to evaluate on")
    p.add_argument("-s", "--style", default=DEFAULT_STYLE, help="style name, checkpoint path, painting, tf26-NN or a blend "
                   "(as stream.py's -s)")
    p.add_argument("--style-image", help="style image for the fidelity number (default: the one the checkpoint names)")
    p.add_argument("--max-frames", type=int, default=60, help="frames to evaluate (default 60)")
    p.add_argument("--size", type=int, default=None, help="scale frames so the longer side is at most this many pixels")
    p.add_argument("--engine", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="CPU threads for the network (default: all cores)")
    p.add_argument("--loss-net", default="random", choices=LOSS_NETS,
                   help="network for the style-fidelity Gram loss: a VGG16, random (seeded, default: no download "
                        "here) or imagenet, or magenta (the style predictor's MobileNetV2)")
    p.add_argument("--metric-flow", default=DEFAULT_METRIC_FLOW, choices=tuple(METRIC_FLOWS),
                   help=f"flow that measures E_warp, never the blending one (default {DEFAULT_METRIC_FLOW}: full-size DIS "
                        "to its finest level; farneback is independent of DIS but fails on fast motion)")
    p.add_argument("--out", help="folder for strip.png and diff.png (default result/eval_<video>_<style>/)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_temporal_arguments(p)
    p.set_defaults(temporal_strength=DEFAULT_STRENGTH)
    return p


def read_frames(path: str, max_frames: int, size: int | None = None) -> list[np.ndarray]:
    """Decode up to ``max_frames`` RGB frames, optionally downscaled to a longest side of ``size``."""
    return read_video(path, max_frames, size)[0]


def read_video(path: str, max_frames: int, size: int | None = None, motion_vectors: bool = False
               ) -> tuple[list[np.ndarray], list[Any]]:
    """:func:`read_frames`, and each frame's decoded motion vectors (all None unless ``motion_vectors``)."""
    import cv2

    from nstream.media.sources import open_source

    if not Path(path).is_file():
        raise NStreamError(f"video not found: {path}")
    source = open_source(path, motion_vectors=motion_vectors)
    frames: list[np.ndarray] = []
    vectors: list[Any] = []
    try:
        for frame in source.frames():
            image = frame.image
            if size and max(image.shape[:2]) > size:
                scale = size / max(image.shape[:2])
                dims = (round(image.shape[1] * scale) // 2 * 2, round(image.shape[0] * scale) // 2 * 2)
                image = cv2.resize(image, dims, interpolation=cv2.INTER_AREA)
            frames.append(image)
            vectors.append(frame.vectors)
            if len(frames) >= max_frames:
                break
    finally:
        source.close()
    if len(frames) < 2:
        raise NStreamError(f"{path} has fewer than 2 frames: nothing to measure")
    return frames, vectors


def stylize_sequence(frames: list[np.ndarray], stylize_image: Any, strength: float, args: argparse.Namespace,
                     on_frame: Callable[[], None] | None = None, vectors: list[Any] | None = None
                     ) -> tuple[list[np.ndarray], float, dict[str, Any]]:
    """Run the stream's temporal stage (file mode: every frame blended) and time it; ``on_frame()``
    after each frame (a progress bar); ``vectors``: each frame's motion vectors (``--flow vectors``)."""
    from dataclasses import replace
    from fractions import Fraction

    from nstream.cli import temporal_config
    from nstream.frames import Frame
    from nstream.stats import PipelineStats
    from nstream.temporal.config import build_temporal_stage

    stats = PipelineStats()
    stage = build_temporal_stage(replace(temporal_config(args), strength=strength), live=False, stats=stats)
    outputs = []
    started = time.perf_counter()
    try:
        for index, image in enumerate(frames):
            frame = Frame(image, index, index, Fraction(1, 25), time.monotonic(),
                          vectors=vectors[index] if vectors else None)
            if stage is not None:
                stage.prepare(frame)
            frame.image = stylize_image(frame.image)
            outputs.append((stage.process(frame) if stage is not None else frame).image)
            if on_frame is not None:
                on_frame()
        seconds = time.perf_counter() - started
    finally:
        if stage is not None:
            stage.close()
    return outputs, len(frames) / seconds, stats.info


def find_style_image(explicit: str | None, meta: dict[str, Any], name: str) -> Path:
    """The style image: --style-image (or the painting itself), else the checkpoint's named file among the
    bundled paintings, in styles/ or in ../shared/data/styles/."""
    if explicit:
        if not Path(explicit).is_file():
            raise NStreamError(f"style image not found: {explicit}")
        return Path(explicit)
    candidates = [str(meta.get("style_image", "")), f"{name}.jpg"]
    for folder in (ROOT / "nstream" / "paintings", ROOT / "styles", ROOT.parent / "shared" / "data" / "styles"):
        for candidate in candidates:
            if candidate and candidate != "none" and (folder / Path(candidate).name).is_file():
                return folder / Path(candidate).name
    raise NStreamError(f"no style image known for style {name!r}: pass --style-image FILE")


def blend_coverage(frames: list[np.ndarray], args: argparse.Namespace, pairs: list[Any],
                   vectors: list[Any] | None = None) -> list[np.ndarray | None]:
    """The blend's reliability weight m over each frame t (None for the first frame and after a cut),
    recomputed with the blending flow and settings the stage uses (its own runs keep no masks)."""
    from nstream.cli import temporal_config
    from nstream.temporal.blend import estimate_motion
    from nstream.temporal.scenecut import SceneCutDetector
    from nstream.temporal.still import StillCamera

    config = temporal_config(args)
    flow = config.create_flow()
    detector = SceneCutDetector(config.scene_cut)
    camera = StillCamera() if config.still_scene else None
    weights: list[np.ndarray | None] = [None]
    for t in range(1, len(frames)):
        if hasattr(flow, "use"):
            flow.use(vectors[t] if vectors else None)
        motion = estimate_motion(flow, frames[t], frames[t - 1], detector, config.mask_smoothing,
                                 check=config.occlusion_check, refine=config.refine_moving,
                                 camera=camera)
        weights.append(None if motion.cut is not None else motion.weight)
    return weights


def coverage_figures(weights: list[np.ndarray | None], pairs: list[Any]) -> dict[str, float]:
    """Mean m over all pixels of the blended frames and over their moving pixels (the judge's flow of
    pair t, which lives on frame t's grid, says which pixels of frame t move)."""
    from nstream.temporal.metrics import moving

    everything, movers, moving_pixels = [], [], 0.0
    for t, weight in enumerate(weights):
        pair = pairs[t] if t < len(pairs) and pairs[t] is not None else pairs[t - 1]
        if weight is None:
            continue
        everything.append(float(weight.mean()))
        if pair is not None:
            mask = moving(pair.flow, MOVING_PX)
            moving_pixels += float(mask.sum())
            movers.append(float((weight * mask).sum()))
    return {"blended_share": float(np.mean(everything)) if everything else 0.0,
            "blended_share_moving": sum(movers) / moving_pixels if moving_pixels else 0.0}


def mask_tile(image: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """The input greyed, green where the blend took the history (weight m), red where it did not."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.45
    m = np.zeros(grey.shape, np.float32) if weight is None else weight
    tile = np.stack([grey + 140 * (1 - m), grey + 140 * m, grey], axis=2)
    return np.clip(tile, 0, 255).astype(np.uint8)


def save_pictures(out_dir: Path, inputs: list[np.ndarray], results: dict[str, list[np.ndarray]], pairs: list[Any],
                  count: int = 5, weights: list[np.ndarray | None] | None = None) -> list[str]:
    """strip.png (rows: input, then each setting) and diff.png (|O_t - warp(O_{t+1})| x4 per setting,
    then, with ``weights``, the mask of frame t+1 warped onto frame t: what the blend took from the history)."""
    import cv2

    from nstream.temporal.warp import warp

    usable = [t for t in range(len(pairs) - count + 1) if all(p is not None for p in pairs[t:t + count])]
    start = usable[len(usable) // 2] if usable else 0
    span = range(start, min(start + count, len(inputs) - 1))
    rows = [np.concatenate([inputs[t] for t in span], axis=1)]
    diffs = []
    for outputs in results.values():
        rows.append(np.concatenate([outputs[t] for t in span], axis=1))
        tiles = []
        for t in span:
            pair = pairs[t]
            aligned = warp(outputs[t + 1], pair.flow) if pair is not None else outputs[t + 1]
            diff = np.abs(outputs[t].astype(np.int16) - aligned.astype(np.int16)) * 4
            tiles.append(np.clip(diff, 0, 255).astype(np.uint8))
        diffs.append(np.concatenate(tiles, axis=1))
    if weights is not None:
        masks = [weights[t + 1] if weights[t + 1] is None or pairs[t] is None else warp(weights[t + 1], pairs[t].flow)
                 for t in span]
        diffs.append(np.concatenate([mask_tile(inputs[t], m) for t, m in zip(span, masks, strict=True)], axis=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in (("strip.png", np.concatenate(rows, axis=0)), ("diff.png", np.concatenate(diffs, axis=0))):
        cv2.imwrite(str(out_dir / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written.append(str(out_dir / name))
    return written


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate, print a table (or JSON), write the pictures; return the figures."""
    from nstream.engines import create_engine
    from nstream.models.style_spec import load_style
    from nstream.progress import step_progress
    from nstream.stylizer import Stylizer
    from nstream.temporal.blend import check_strength
    from nstream.temporal.metrics import StyleFidelity, measure_pairs, metric_flow

    strength = check_strength(args.temporal_strength)
    if strength == 0:
        raise NStreamError("eval compares blending with no blending: give --temporal-strength above 0")
    if args.max_frames < 2:
        raise NStreamError("--max-frames must be at least 2")
    style = load_style(args.style)
    style_image = find_style_image(args.style_image or style.painting, style.meta, style.name)
    frames, vectors = read_video(args.video, args.max_frames, args.size, motion_vectors=args.flow == "vectors")
    engine = create_engine(args.engine, style.model, args.device, "auto", threads=args.threads)
    stylizer = Stylizer(engine, style=style.vector)
    height, width = frames[0].shape[:2]
    engine.warmup(height + (-height) % 4, width + (-width) % 4)
    threshold = None if args.no_scene_cuts else args.scene_cut
    measuring = metric_flow(args.metric_flow)
    with step_progress(f"flow ({measuring.describe()})", total=len(frames) - 1) as advance:
        pairs = measure_pairs(frames, measuring, threshold, on_pair=advance)
    fidelity = StyleFidelity(style_image, loss_net=args.loss_net)
    sample = slice(None, None, max(1, len(frames) // 8))
    results: dict[str, list[np.ndarray]] = {}
    report: dict[str, Any] = {
        "video": args.video, "style": style.name, "style_image": str(style_image), "frames": len(frames),
        "size": f"{width}x{height}", "engine": engine.name, "metric_flow": measuring.describe(),
        "loss_net": args.loss_net, "pairs_skipped_as_cuts": sum(p is None for p in pairs),
        **warping_figures(frames, pairs, "input_"), "settings": {},
    }
    for label, a in (("off", 0.0), (f"blend a={strength:g}", strength)):
        with step_progress(f"stylize, {label}", total=len(frames)) as advance:
            outputs, fps, info = stylize_sequence(frames, stylizer, a, args, on_frame=advance, vectors=vectors)
        results[label] = outputs
        report["settings"][label] = {
            **warping_figures(outputs, pairs), "style_loss": fidelity(outputs[sample]), "fps": round(fps, 2),
            **{k: v for k, v in info.items() if k in ("temporal", "scene_cuts", "flow_resets", "flow_ms")},
        }
    weights = blend_coverage(frames, args, pairs, vectors)
    add_blend_figures(report, report["settings"][f"blend a={strength:g}"], coverage_figures(weights, pairs))
    out_dir = Path(args.out) if args.out else Path("result") / f"eval_{Path(args.video).stem}_{style.name}"
    report["pictures"] = save_pictures(out_dir, frames, results, pairs, weights=weights)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, args.loss_net)
    return report


def warping_figures(outputs: list[np.ndarray], pairs: list[Any], prefix: str = "") -> dict[str, float]:
    """E_warp over all reliable pixels and over the moving ones alone."""
    from nstream.temporal.metrics import pair_warping_errors

    everything, movers = pair_warping_errors(outputs, pairs), pair_warping_errors(outputs, pairs, MOVING_PX)
    return {f"{prefix}e_warp": float(np.mean(everything)) if everything else 0.0,
            f"{prefix}e_warp_moving": float(np.mean(movers)) if movers else 0.0}


def add_blend_figures(report: dict[str, Any], blended: dict[str, Any], coverage: dict[str, float]) -> None:
    """The blended setting's share of excess flicker removed (all pixels, moving ones) and its coverage."""
    from nstream.temporal.metrics import excess_removed

    off = report["settings"]["off"]
    for suffix in ("", "_moving"):
        blended[f"excess_removed{suffix}"] = excess_removed(report[f"input_e_warp{suffix}"], off[f"e_warp{suffix}"],
                                                            blended[f"e_warp{suffix}"])
    blended.update(coverage)


def print_report(report: dict[str, Any], loss_net: str) -> None:
    """The human-readable table: E_warp (all, moving), style loss, fps; then the blend's shares."""
    def share(value: float | None) -> str:
        return "n/a (no excess over the input)" if value is None else f"{100 * value:.0f} %"

    print(f"{report['video']}: {report['frames']} frames at {report['size']}, style {report['style']}, engine "
          f"{report['engine']}; E_warp by {report['metric_flow']} (moving: pixels it moves more than {MOVING_PX:g} px), "
          f"style loss by {'MobileNetV2 (magenta)' if loss_net == 'magenta' else loss_net + ' VGG16'}")
    print(f"{'setting':<14}{'E_warp':>12}{'E_warp moving':>15}{'style loss':>14}{'fps':>9}")
    print(f"{'input':<14}{report['input_e_warp']:>12.6f}{report['input_e_warp_moving']:>15.6f}{'':>14}{'':>9}")
    for label, row in report["settings"].items():
        print(f"{label:<14}{row['e_warp']:>12.6f}{row['e_warp_moving']:>15.6f}{row['style_loss']:>14.6g}{row['fps']:>9.2f}")
    for label, row in report["settings"].items():
        if "excess_removed" in row:
            print(f"{label}: excess flicker removed {share(row['excess_removed'])} (moving pixels "
                  f"{share(row['excess_removed_moving'])}); history blended into {100 * row['blended_share']:.0f} % of "
                  f"pixels ({100 * row['blended_share_moving']:.0f} % of moving ones)")
    for path in report["pictures"]:
        print(f"wrote {path}")
