"""``offline.py``: Gatys et al. style transfer by optimization, with Ruder et al.'s video constraints.

Slow and thorough where ``stream.py`` is fast: every image or frame is optimized pixel by pixel
against a VGG19's content and style features. Stills give a still; videos (and GIFs, and folders
of images) give a video with the input's timing and audio, rendered frame by frame into a work
folder so that a stopped render continues where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nstream.errors import NStreamError

log = logging.getLogger("nstream.offline")

STILL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
DEFAULT_SIZE = 512


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _iterations(text: str) -> tuple[int, int]:
    """``500`` or ``500,250``: first frame (and stills), later frames."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"use N or FIRST,LATER, got {text!r}")
    values = [_positive_int(p.strip()) for p in parts]
    return values[0], values[-1]


def _int_list(text: str) -> list[int]:
    try:
        values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"use comma-separated whole numbers like 1,2,4, got {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"frame distances must be 1 or more, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        raise argparse.ArgumentTypeError("name at least one layer, e.g. relu4_2")
    return values


class _HelpFormatter(argparse.HelpFormatter):
    """Each option's default said once: appended as ``(default: X)`` unless its help already names
    it (or there is none to say), lists written the way they are typed (``relu1_1,relu2_1``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not text or "default" in text.lower() or default is None or default is argparse.SUPPRESS
                or action.option_strings == [] or isinstance(action, argparse._HelpAction)):
            return text
        if isinstance(default, (list, tuple)):
            shown = ",".join(str(v) for v in dict.fromkeys(default)) if isinstance(default, tuple) else \
                ",".join(str(v) for v in default)
        elif isinstance(default, bool):
            shown = "on" if default else "off"
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class _BooleanOption(argparse.BooleanOptionalAction):
    """``--x/--no-x`` without argparse's own "(default: ...)" (Python < 3.14 appends one to the help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        help_text = kwargs.pop("help", None)
        super().__init__(*args, **kwargs)
        self.help = help_text


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error:`` line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from nstream.lossnet import LOSS_NETS
    from nstream.optimize.loop import OPTIMIZERS
    from nstream.optimize.losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, LossWeights
    from nstream.optimize.transfer import INITS
    from nstream.temporal import FLOWS
    from nstream.temporal.occlusion import TOLERANCES

    d = LossWeights()
    bool_opt = _BooleanOption
    p = _Parser(
        prog="offline.py", formatter_class=_HelpFormatter,
        description="Style transfer by optimization (Gatys et al. 2015) for stills, GIFs and videos, with Ruder et al. "
                    "(2016) temporal constraints for videos. Slow, thorough, resumable.",
        epilog="example: offline.py -c photo.jpg -s starry.jpg -o out.png;  "
               "offline.py -c clip.mp4 -s a.jpg b.jpg --style-blend-weights 0.7 0.3 -o out.mp4 --long-term 1,2,4 --passes 3")
    io = p.add_argument_group("input and output")
    io.add_argument("-c", "--content", required=True, help="content: an image, a GIF, any video file, or a folder/glob of images")
    io.add_argument("-s", "--style", nargs="+", required=True, metavar="IMAGE",
                    help="style image(s); several are blended by --style-blend-weights")
    io.add_argument("--style-blend-weights", "--style_blend_weights", nargs="+", type=_non_negative, metavar="W",
                    help="one weight per style image (normalized to sum 1); default: equal")
    io.add_argument("-o", "--output",
                    help="an image for a still input; .mp4 .mkv .mov .webm .gif ... or a folder/ for videos "
                         "(default: <content>_<style>.png or .mp4 in the current folder)")
    io.add_argument("-z", "--resize", type=_positive_int, default=DEFAULT_SIZE,
                    help="work (and output) size: longest side in pixels; inputs are only ever scaled down")
    io.add_argument("--limit-frames", type=_positive_int, help="use only the first N frames of a video")
    io.add_argument("--audio", action=bool_opt, default=True, help="copy the input's audio into a video output")
    io.add_argument("--crf", type=int, help="x264 constant quality of a video output (default 18)")
    io.add_argument("--work-dir", help="where finished frames, flows and masks are kept (default: <output>.work/)")
    io.add_argument("--resume", action=bool_opt, default=True,
                    help="continue a stopped render from the frames in the work folder; --no-resume starts over")
    io.add_argument("--max-frames", type=_positive_int,
                    help="finish at most this many frames in this run, then stop (run again to continue)")
    loss = p.add_argument_group("losses")
    loss.add_argument("-w", "--content_weight", "--content-weight", type=_non_negative, default=d.content,
                      help="how strongly the result keeps the content's features")
    loss.add_argument("-y", "--style_weight", "--style-weight", type=_non_negative, default=d.style,
                      help="how strongly it takes the style's Gram statistics (relative errors: the weight means the same "
                           "at any size and with either loss network)")
    loss.add_argument("--tv-weight", "--tv_weight", type=_non_negative, default=d.tv,
                      help="total-variation smoothing against high-frequency noise")
    loss.add_argument("--content-layers", type=_names, default=list(DEFAULT_CONTENT_LAYERS), metavar="L1,L2",
                      help="VGG19 layers for the content loss")
    loss.add_argument("--style-layers", type=_names, default=list(DEFAULT_STYLE_LAYERS), metavar="L1,L2",
                      help="VGG19 layers for the style loss")
    loss.add_argument("--style-scale", type=float, default=1.0,
                      help="style image size relative to the output's longest side: smaller gives finer brush strokes")
    loss.add_argument("--preserve-colors", "--preserve_colors", action=bool_opt, default=False,
                      help="keep the content's colours: only the luminance is stylized (Gatys et al. 2016)")
    opt = p.add_argument_group("optimization")
    opt.add_argument("-i", "--iters", type=_iterations, default=(500, 250), metavar="N[,LATER]",
                     help="iterations for stills and a video's first frame, and (after a comma) for later frames, which "
                          "start from the warped previous result and need fewer")
    opt.add_argument("-a", "--optimizer", choices=OPTIMIZERS, default="lbfgs",
                     help="lbfgs: best per iteration (Gatys); adam: cheaper steps, more of them")
    opt.add_argument("--learning-rate", type=float, help="step size (default 1 for lbfgs, 0.02 for adam)")
    opt.add_argument("-e", "--early_stopping", "--early-stopping", type=_non_negative, default=1e-4,
                     help="stop a frame when the loss falls by less than this fraction per iteration (mean over the "
                          "last 10); 0 always runs all iterations")
    opt.add_argument("-I", "--target_start", "--init", choices=INITS, default="prev-warped",
                     help="start image: the content, seeded noise, or (video frames after the first) the previous result "
                          "warped by the optical flow, the content filling where the flow is unreliable")
    opt.add_argument("-p", "--start_from_prev", "--start-from-prev", action=bool_opt, default=False,
                     help="start each video frame from the previous result as it is, not warped (for footage where the "
                          "flow fails)")
    opt.add_argument("--scales", type=_positive_int, default=1,
                     help="coarse-to-fine: optimize at 1/2^(N-1) size first and refine up to full size; helps large outputs")
    opt.add_argument("--seed", type=int, default=0, help="seed for the random start and the random loss network")
    video = p.add_argument_group("video (Ruder et al. 2016)")
    video.add_argument("-T", "--temporal_loss", "--temporal-loss", action=bool_opt, default=True,
                       help="penalize changes from the warped earlier results where the flow is reliable")
    video.add_argument("-W", "--temporal_weight", "--temporal-weight", type=_non_negative, default=d.temporal,
                       help="weight of the temporal loss")
    video.add_argument("--long-term", type=_int_list, default=[1], metavar="J1,J2",
                       help="earlier frames the temporal loss looks back to, e.g. 1,2,4 (Ruder's long-term consistency); "
                            "each pixel counts only for the closest frame where it is visible")
    video.add_argument("--passes", type=_positive_int, default=1,
                       help="multi-pass: after the first pass, alternate backward and forward passes that blend each "
                            "frame with its warped neighbour (Ruder's multi-pass algorithm)")
    video.add_argument("--pass-iters", type=_positive_int,
                       help="iterations per frame in passes after the first (default: half the later-frame iterations)")
    video.add_argument("--pass-blend", type=float, default=0.5,
                       help="multi-pass blend: how much of the warped neighbour enters a frame's start image (Ruder's delta)")
    video.add_argument("-Y", "--style_from_prev", "--style-from-prev", action=bool_opt, default=False,
                       help="also take style statistics from the previous result (as much as from the style images), "
                            "so the texture drifts less between frames")
    video.add_argument("--flow", choices=FLOWS, default="dis", help="optical flow between input frames")
    video.add_argument("--mask", choices=tuple(TOLERANCES), default="loose",
                       help="where the flow counts as reliable: Ruder's forward-backward and motion-boundary constants "
                            "(ruder, made for more accurate flows than DIS) or looser ones (loose, default: E_warp "
                            "-24 %% on carphone; docs/BENCHMARKS.md)")
    net = p.add_argument_group("loss network and device")
    net.add_argument("--loss-net", choices=LOSS_NETS, default="imagenet",
                     help="imagenet: torchvision's VGG19 weights (downloaded once, or --vgg-weights); random: a seeded "
                          "random VGG19 with average pooling (no download; still transfers style)")
    net.add_argument("--vgg-weights", help="a torchvision VGG19 state dict file to use instead of downloading")
    net.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    net.add_argument("--threads", type=_positive_int,
                     help="CPU threads for torch (default: torch's choice, all cores); on a busy machine 1 can be much faster")
    net.add_argument("--progress", action=bool_opt, default=True, help="progress bars (plain lines when not a terminal)")
    net.add_argument("-v", "--verbose", action="store_true")
    return p


def _device(name: str) -> Any:
    from nstream.devices import pick_device

    return pick_device(name)


def _check(args: argparse.Namespace) -> None:
    """Option values that argparse alone cannot judge."""
    if args.style_blend_weights is not None and len(args.style_blend_weights) != len(args.style):
        raise NStreamError(f"--style-blend-weights has {len(args.style_blend_weights)} values for {len(args.style)} style "
                           "image(s): give one weight per style")
    if args.style_blend_weights is not None and sum(args.style_blend_weights) <= 0:
        raise NStreamError("--style-blend-weights are all 0: give at least one style a positive weight")
    if not 0.05 <= args.style_scale <= 8:
        raise NStreamError(f"--style-scale {args.style_scale} is out of range: use 0.05 to 8")
    if args.resize < 16:
        raise NStreamError(f"-z/--resize {args.resize} is too small: VGG19 needs at least 16 pixels")
    if args.scales > 6:
        raise NStreamError(f"--scales {args.scales} is too many: use 1 to 6")
    if not 0.0 <= args.pass_blend <= 1.0:
        raise NStreamError(f"--pass-blend {args.pass_blend} is out of range: use 0 to 1")
    if 1 not in args.long_term:
        raise NStreamError(f"--long-term {','.join(map(str, args.long_term))} must include 1 (the previous frame)")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise NStreamError(f"--learning-rate {args.learning_rate} must be positive")
    if args.vgg_weights and args.loss_net == "random":
        raise NStreamError("--vgg-weights and --loss-net random contradict each other: pick one")
    if args.crf is not None and not 0 <= args.crf <= 51:
        raise NStreamError(f"--crf {args.crf} is out of range: use 0 (lossless) to 51")


def _output_kind(output: str, still: bool) -> str:
    """'image', 'video' or 'folder' for ``--output``, refusing what cannot hold the input."""
    from nstream.media.sinks import VIDEO_SUFFIXES

    suffix = Path(output).suffix.lower()
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        kind = "folder"
    elif suffix in STILL_SUFFIXES:
        kind = "image"
    elif suffix in VIDEO_SUFFIXES:
        kind = "video"
    else:
        known = " ".join(sorted(STILL_SUFFIXES | set(VIDEO_SUFFIXES)))
        raise NStreamError(f"unsupported output type {suffix or '(none)'!r} for {output}: use one of {known}, or a folder/")
    if still and kind != "image":
        raise NStreamError(f"the content is a still image, so the output must be one too (.png, .jpg), not {output}")
    if not still and kind == "image":
        raise NStreamError(f"the content is a video: write it to a video file (.mp4, .gif, ...) or a folder/, not {output}")
    return kind


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the loss network and targets, then render a still or a video; returns a small summary."""
    import torch

    from nstream.lossnet import MultiLayerEncoder, vgg_features
    from nstream.media.sinks import check_writable
    from nstream.media.sources import open_source, read_image
    from nstream.optimize.losses import LossWeights
    from nstream.optimize.transfer import Transfer, TransferSettings, fit_size

    _check(args)
    styles = [read_image(path, "style image") for path in args.style]
    source = open_source(args.content)
    try:
        info = source.info
        still = info.kind == "image"
        style_name = Path(args.style[0]).stem
        output = args.output or f"{info.name}_{style_name}{'.png' if still else '.mp4'}"
        kind = _output_kind(output, still)
        check_writable(output, folder=kind == "folder")  # before minutes of work, not after
        width, height = fit_size(info.width, info.height, args.resize, even=not still)
        device = _device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        features = vgg_features("vgg19", args.loss_net, args.vgg_weights, seed=args.seed)
        layers = list(dict.fromkeys(args.content_layers + args.style_layers))
        encoder = MultiLayerEncoder(features, layers)
        weights = LossWeights(content=args.content_weight, style=args.style_weight, tv=args.tv_weight,
                              temporal=args.temporal_weight if args.temporal_loss else 0.0)
        settings = TransferSettings(content_layers=args.content_layers, style_layers=args.style_layers, weights=weights,
                                    optimizer=args.optimizer, lr=args.learning_rate, tolerance=args.early_stopping,
                                    scales=args.scales, style_scale=args.style_scale, seed=args.seed)
        blend = args.style_blend_weights or [1.0] * len(styles)
        transfer = Transfer(encoder, styles, blend, settings, device)
        log.info("work size %dx%d on %s, loss net %s", width, height, device, args.loss_net)
        if still:
            frame = next(iter(source.frames()))
            return _render_still(args, transfer, frame.image, width, height, output)
        return _render_video(args, transfer, source, width, height, output, kind, settings)
    finally:
        source.close()


def _render_still(args: argparse.Namespace, transfer: Any, image: Any, width: int, height: int, output: str) -> dict[str, Any]:
    from PIL import Image

    from nstream.optimize.report import RenderView, summary
    from nstream.optimize.transfer import preserve_colors, resize
    from nstream.optimize.video import FrameReport

    content = resize(image, width, height)
    started = time.perf_counter()
    with RenderView(1, enabled=args.progress) as view:
        view.frame_started(0, 0, args.iters[0])
        result, run_ = transfer.stylize(content, transfer.start_image(content, "random" if args.target_start == "random"
                                                                      else "content"), args.iters[0], on_step=view.step)
        report = FrameReport(0, 0, run_.iterations, time.perf_counter() - started, run_.terms, run_.first_terms, run_.stopped)
        view.frame_done(report)
    if args.preserve_colors:
        result = preserve_colors(result, content)
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(path)
    except (OSError, ValueError) as exc:
        raise NStreamError(f"cannot write {output} ({exc})") from None
    print(summary([report], 0, time.perf_counter() - started))
    print(f"wrote {output} ({width}x{height})")
    return {"output": output, "frames": 1, "terms": run_.terms, "first_terms": run_.first_terms}


def _source_key(args: argparse.Namespace, width: int, height: int) -> dict[str, Any]:
    path = Path(args.content)
    stat = path.stat() if path.exists() else None
    return {"content": str(path.resolve()), "bytes": stat.st_size if stat else None,
            "mtime_ns": stat.st_mtime_ns if stat else None, "width": width, "height": height, "limit": args.limit_frames}


def _work_settings(args: argparse.Namespace, settings: Any, width: int, height: int) -> dict[str, Any]:
    """Everything that shapes a finished frame (not --passes: more passes continue the ones done)."""
    styles = [{"path": str(Path(s).resolve()), "bytes": Path(s).stat().st_size} for s in args.style]
    return {"size": [width, height], "styles": styles, "blend": args.style_blend_weights, "transfer": asdict(settings),
            "loss_net": args.loss_net, "vgg_weights": args.vgg_weights, "iters": list(args.iters),
            "init": args.target_start, "start_from_prev": args.start_from_prev, "style_from_prev": args.style_from_prev,
            "temporal": args.temporal_loss, "long_term": args.long_term, "pass_iters": args.pass_iters,
            "pass_blend": args.pass_blend, "flow": args.flow,
            # Work folders from before --mask were made with Ruder's mask and have no "mask" key: they resume with --mask ruder.
            **({} if args.mask == "ruder" else {"mask": args.mask})}


def _render_video(args: argparse.Namespace, transfer: Any, source: Any, width: int, height: int, output: str, kind: str,
                  settings: Any) -> dict[str, Any]:
    from nstream.optimize.report import RenderView, summary
    from nstream.optimize.video import FlowCache, VideoSettings, WorkFolder, render_video
    from nstream.temporal import create_flow
    from nstream.temporal.occlusion import TOLERANCES

    work = WorkFolder(Path(args.work_dir or f"{output.rstrip('/')}.work"))
    work.prepare(_work_settings(args, settings, width, height), args.resume)
    key = _source_key(args, width, height)
    started = time.perf_counter()
    count = work.content_ready(key)
    if count is None:
        count = work.store_content((f.image for f in source.frames()), key, width, height, args.limit_frames)
        for warning in source.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    if count == 0:
        raise NStreamError(f"{args.content} has no decodable video frames")
    needs_flow = count > 1 and (args.temporal_loss or args.target_start == "prev-warped" or args.passes > 1)
    flow_options: dict[str, Any] = {"preset": "medium", "scale": 1.0} if args.flow == "dis" else {}
    backend = create_flow(args.flow, **flow_options) if needs_flow else None
    flows = None
    if backend is not None:
        name = backend.describe() + ("" if args.mask == "ruder" else f" mask={args.mask}")  # old caches: Ruder's masks
        flows = FlowCache(work, backend, name, TOLERANCES[args.mask])
    iters_first, iters_rest = args.iters
    video = VideoSettings(iterations_first=iters_first, iterations_rest=iters_rest, init=args.target_start,
                          start_from_prev=args.start_from_prev, style_from_prev=args.style_from_prev,
                          temporal=args.temporal_loss, long_term=args.long_term, passes=args.passes,
                          pass_iterations=args.pass_iters or max(1, iters_rest // 2), pass_blend=args.pass_blend,
                          max_frames=args.max_frames)
    already = sum(work.done(p, i) for p in range(args.passes) for i in range(count))
    try:
        with RenderView(count, args.passes, enabled=args.progress) as view:
            reports, complete = render_video(work, count, transfer, flows, video, view)
    except KeyboardInterrupt:
        finished = sum(work.done(p, i) for p in range(args.passes) for i in range(count))
        print(f"interrupted: {finished} of {count * args.passes} frames are finished in {work.root}; "
              "run the same command again to resume", file=sys.stderr)
        raise
    elapsed = time.perf_counter() - started
    print(summary(reports, already, elapsed, flows.seconds if flows else 0.0))
    if not complete:
        print(f"stopped after {len(reports)} frame(s) (--max-frames): the finished frames are in {work.root}; "
              "run the same command again to continue")
        return {"output": None, "frames": count, "reports": reports, "complete": False, "work": str(work.root)}
    _write_video(args, work, count, width, height, output, kind)
    print(f"wrote {output} ({count} frames, {width}x{height}); frames kept in {work.root}")
    return {"output": output, "frames": count, "reports": reports, "complete": True, "work": str(work.root)}


def _write_video(args: argparse.Namespace, work: Any, count: int, width: int, height: int, output: str, kind: str) -> None:
    """Mux the last pass's frames with the input's own timing and audio (decoded again, not re-timed)."""
    from dataclasses import replace

    from nstream.media.sinks import open_sink
    from nstream.media.sources import open_source
    from nstream.optimize.transfer import preserve_colors
    from nstream.optimize.video import read_png

    source = open_source(args.content)
    try:
        info = replace(source.info, width=width, height=height)
        if not args.audio:
            info.audio_stream = None
        sink = open_sink(output if kind != "folder" else output.rstrip("/") + "/", crf=args.crf)
        try:
            sink.open(info)
            for frame in source.frames():
                if frame.index >= count:
                    break
                image = read_png(work.frame_path(args.passes - 1, frame.index))
                if args.preserve_colors:
                    image = preserve_colors(image, work.content(frame.index))
                frame.image = image
                sink.write(frame)
        finally:
            sink.close()
    finally:
        source.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``offline.py``: exit 0 on success, 2 with one ``error:`` line on bad input."""
    from nstream.engines.graph_engine import torch_installed

    if not torch_installed():
        from nstream.cli import requires_torch

        return requires_torch("offline.py (optimization on a loss network)")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        previous = None
    try:
        run(args)
    except NStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
