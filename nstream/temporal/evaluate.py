"""``python -m nstream eval VIDEO --style NAME``: how much the temporal blend steadies a video, at what cost.

Stylizes the first ``--max-frames`` frames of VIDEO twice, without blending and with it
(``--temporal-strength``), and prints per setting the warping error E_warp (measured with
a finer DIS flow than the one that blends, or Farneback), the style fidelity (Gram style loss against the
style image through a seeded random VGG16 unless ``--loss-net imagenet``, or ``magenta``: no
ImageNet VGG weights can be downloaded here) and the frames per second of stylize + blend. The input's own E_warp is
printed as the floor. Pictures go to ``--out``: ``strip.png`` (consecutive frames: input, off,
blended) and ``diff.png`` (|O_t - warp(O_{t+1})| x4 for off and blended: flicker shows bright).
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


def build_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``python -m nstream eval``."""
    from nstream.lossnet import LOSS_NETS
    from nstream.models.registry import DEFAULT_STYLE
    from nstream.temporal.metrics import DEFAULT_METRIC_FLOW, METRIC_FLOWS
    from nstream.temporal.options import add_arguments

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
    add_arguments(p)
    p.set_defaults(temporal_strength=DEFAULT_STRENGTH)
    return p


def read_frames(path: str, max_frames: int, size: int | None = None) -> list[np.ndarray]:
    """Decode up to ``max_frames`` RGB frames, optionally downscaled to a longest side of ``size``."""
    import cv2

    from nstream.media.sources import open_source

    if not Path(path).is_file():
        raise NStreamError(f"video not found: {path}")
    source = open_source(path)
    frames: list[np.ndarray] = []
    try:
        for frame in source.frames():
            image = frame.image
            if size and max(image.shape[:2]) > size:
                scale = size / max(image.shape[:2])
                dims = (round(image.shape[1] * scale) // 2 * 2, round(image.shape[0] * scale) // 2 * 2)
                image = cv2.resize(image, dims, interpolation=cv2.INTER_AREA)
            frames.append(image)
            if len(frames) >= max_frames:
                break
    finally:
        source.close()
    if len(frames) < 2:
        raise NStreamError(f"{path} has fewer than 2 frames: nothing to measure")
    return frames


def stylize_sequence(frames: list[np.ndarray], stylize_image: Any, strength: float, args: argparse.Namespace,
                     on_frame: Callable[[], None] | None = None) -> tuple[list[np.ndarray], float, dict[str, Any]]:
    """Run the stream's temporal stage (file mode: every frame blended) and time it; ``on_frame()``
    after each frame (a progress bar)."""
    from fractions import Fraction

    from nstream.frames import Frame
    from nstream.temporal.options import wrap_stylize

    def stylize(frame: Frame) -> Frame:
        frame.image = stylize_image(frame.image)
        return frame

    holder = argparse.Namespace(**{**vars(args), "temporal_strength": strength})
    stats = argparse.Namespace(info={})
    step = wrap_stylize(stylize, holder, live=False, stats=stats)
    outputs = []
    started = time.perf_counter()
    for index, image in enumerate(frames):
        outputs.append(step(Frame(image, index, index, Fraction(1, 25), time.monotonic())).image)
        if on_frame is not None:
            on_frame()
    seconds = time.perf_counter() - started
    if hasattr(step, "close"):
        step.close()
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


def save_pictures(out_dir: Path, inputs: list[np.ndarray], results: dict[str, list[np.ndarray]], pairs: list[Any],
                  count: int = 5) -> list[str]:
    """strip.png (rows: input, then each setting) and diff.png (|O_t - warp(O_{t+1})| x4 per setting)."""
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
    from nstream.temporal.metrics import StyleFidelity, measure_pairs, metric_flow, pair_warping_errors

    strength = check_strength(args.temporal_strength)
    if strength == 0:
        raise NStreamError("eval compares blending with no blending: give --temporal-strength above 0")
    if args.max_frames < 2:
        raise NStreamError("--max-frames must be at least 2")
    style = load_style(args.style)
    style_image = find_style_image(args.style_image or style.painting, style.meta, style.name)
    frames = read_frames(args.video, args.max_frames, args.size)
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
        "input_e_warp": float(np.mean(pair_warping_errors(frames, pairs) or [0.0])), "settings": {},
    }
    for label, a in (("off", 0.0), (f"blend a={strength:g}", strength)):
        with step_progress(f"stylize, {label}", total=len(frames)) as advance:
            outputs, fps, info = stylize_sequence(frames, stylizer, a, args, on_frame=advance)
        results[label] = outputs
        errors = pair_warping_errors(outputs, pairs)
        report["settings"][label] = {
            "e_warp": float(np.mean(errors)) if errors else 0.0, "style_loss": fidelity(outputs[sample]), "fps": round(fps, 2),
            **{k: v for k, v in info.items() if k in ("temporal", "scene_cuts", "flow_resets", "flow_ms")},
        }
    out_dir = Path(args.out) if args.out else Path("result") / f"eval_{Path(args.video).stem}_{style.name}"
    report["pictures"] = save_pictures(out_dir, frames, results, pairs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['video']}: {len(frames)} frames at {report['size']}, style {style.name}, engine {engine.name}; "
              f"E_warp by {report['metric_flow']}, style loss by "
              f"{'MobileNetV2 (magenta)' if args.loss_net == 'magenta' else args.loss_net + ' VGG16'}")
        print(f"{'setting':<14}{'E_warp':>12}{'style loss':>14}{'fps':>9}")
        print(f"{'input':<14}{report['input_e_warp']:>12.6f}{'':>14}{'':>9}")
        for label, row in report["settings"].items():
            print(f"{label:<14}{row['e_warp']:>12.6f}{row['style_loss']:>14.6g}{row['fps']:>9.2f}")
        for path in report["pictures"]:
            print(f"wrote {path}")
    return report
