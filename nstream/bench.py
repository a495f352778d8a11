"""``python -m nstream export`` and ``python -m nstream bench``: build engines ahead of time, measure them.

The benchmark times the engine alone (``infer`` on a padded frame already in memory), not
decoding or encoding: that is the stage the backends differ in. Numbers are published in
docs/BENCHMARKS.md with the command and the machine; no test asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nstream.errors import NStreamError

RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
RANDOM_STYLE = "random"  # a seeded random Johnson network: same cost as a trained one, no file needed


def _check_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x144, not {text!r}") from None
    if width % 4 or height % 4 or min(width, height) < 8:
        raise argparse.ArgumentTypeError("check size must be multiples of 4, at least 8x8")
    return width, height


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--calibration", help="folder with calib/ and holdout/ frames (default: the checkout's calibration/)")
    p.add_argument("--check-size", type=_check_size, default=(256, 144), help="WxH the PSNR gate and calibration run at")
    p.add_argument("--cache", help="engine cache folder (default: $NSTREAM_ENGINES or engines/)")


def build_export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--style", required=True, help="style name or checkpoint path")
    p.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "tensorrt"))
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
    p.add_argument("--shape-range", help="tensorrt: min:opt:max as HxW:HxW:HxW (default 64x64:720x1280:1088x1920)")
    p.add_argument("-o", "--output", help="also copy the validated ONNX graph or TensorRT plan here")
    add_engine_options(p)


def build_bench_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--style", default=RANDOM_STYLE, help="style name or path; 'random' (default) is a seeded "
                   "random Johnson network, which costs exactly what a trained one does")
    p.add_argument("--engines", default="torch,onnxruntime", help="comma-separated: torch, onnxruntime, tensorrt, torch2trt")
    p.add_argument("--precisions", default="fp32", help="comma-separated: fp32, fp16, int8")
    p.add_argument("--resolutions", default="360p,720p,1080p", help="comma-separated: 360p, 720p, 1080p or WxH")
    p.add_argument("--iterations", type=int, default=10, help="timed frames per row")
    p.add_argument("--warmup", type=int, default=2, help="untimed frames per row")
    p.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime (default: all)")
    p.add_argument("--json", help="also write the results to this JSON file")
    add_engine_options(p)


def load_model(style: str) -> tuple[nn.Module, str, torch.Tensor | None]:
    """(network, style name, style vector for a conditioned network) of a ``-s`` spec or ``random``."""
    if style == RANDOM_STYLE:
        from nstream.models.johnson import TransformerNet

        torch.manual_seed(0)
        return TransformerNet().eval(), RANDOM_STYLE, None
    from nstream.models.style_spec import load_style

    chosen = load_style(style)
    vector = None if chosen.vector is None else torch.from_numpy(chosen.vector).reshape(1, -1)
    return chosen.model, chosen.name, vector


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    from nstream.engines.cache import EngineCache

    options: dict[str, Any] = {"calibration": args.calibration, "check_size": args.check_size}
    if args.cache:
        options["cache"] = EngineCache(args.cache)
    return options


def run_export(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse) the engine, which runs the PSNR gate; report where it lives."""
    from nstream.engines import create_engine

    model, name, _ = load_model(args.style)
    options = _engine_options(args)
    if args.engine == "tensorrt" and args.shape_range:
        from nstream.engines.trt_engine import parse_profile

        options["profile"] = parse_profile(args.shape_range)
    engine = create_engine(args.engine, model, args.device, args.precision, **options)
    artifact = getattr(engine, "plan_path", None) or engine.build.path  # type: ignore[attr-defined]
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact, args.output)
    print(f"{name}: {engine.name} {engine.precision} on {engine.device}: PSNR {engine.psnr:.1f} dB vs PyTorch fp32 "  # type: ignore[attr-defined]
          f"on held-out frames; cache {engine.cache_status}: {artifact}")  # type: ignore[attr-defined]
    return {"style": name, "engine": engine.name, "precision": engine.precision, "path": str(artifact)}


def time_engine(engine: Any, width: int, height: int, iterations: int, warmup: int,
                style: torch.Tensor | None = None) -> dict[str, float]:
    """Latency of ``infer`` alone on a frame already on the engine's device, padded as the stylizer pads
    (a conditioned network gets ``style`` with every frame, as in the pipeline)."""
    h, w = height + (-height) % 4, width + (-width) % 4
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)).mul(255).to(engine.device)
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)
    args = (x,) if style is None else (x, style)
    for _ in range(warmup):
        engine.infer(*args)
    sync()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        engine.infer(*args)
        sync()
        times.append(time.perf_counter() - start)
    mean = statistics.fmean(times)
    ordered = sorted(times)
    return {"fps": 1.0 / mean, "mean_ms": mean * 1e3, "p50_ms": statistics.median(times) * 1e3,
            "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1e3}


def _resolution(text: str) -> tuple[str, int, int]:
    if text in RESOLUTIONS:
        return (text, *RESOLUTIONS[text])
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise NStreamError(f"unknown resolution {text!r}: use 360p, 720p, 1080p or WxH") from None
    return text, width, height


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every engine x precision x resolution asked for; rows that cannot run say why instead."""
    from rich.console import Console
    from rich.table import Table

    from nstream.engines import create_engine
    from nstream.engines.cache import device_tag
    from nstream.progress import step_progress

    if args.iterations < 1:
        raise NStreamError("--iterations must be at least 1")
    model, name, vector = load_model(args.style)
    resolutions = [_resolution(r.strip()) for r in args.resolutions.split(",") if r.strip()]
    options = _engine_options(args)
    rows, skipped = [], []
    kinds = [e.strip() for e in args.engines.split(",") if e.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    with step_progress("bench", total=len(kinds) * len(precisions) * len(resolutions)) as advance:
        for kind in kinds:
            for precision in precisions:
                try:
                    extra = {"onnxruntime": options, "tensorrt": options}.get(kind, {})
                    engine = create_engine(kind, model, args.device, precision, threads=args.threads, **extra)
                except NStreamError as exc:
                    skipped.append({"engine": kind, "precision": precision, "reason": str(exc)})
                    for _ in resolutions:
                        advance(f"{kind} {precision}: skipped")
                    continue
                for label, width, height in resolutions:
                    timing = time_engine(engine, width, height, args.iterations, args.warmup, vector)
                    rows.append({"engine": kind, "precision": precision, "resolution": label, "width": width,
                                 "height": height, "device": device_tag(engine.device),
                                 "psnr_db": getattr(engine, "psnr", None), **timing})
                    advance(f"{kind} {precision} {label}: {timing['fps']:.2f} fps")
    table = Table("engine", "precision", "resolution", "fps", "mean ms", "p50 ms", "p95 ms", "PSNR dB",
                  title=f"stylize-only, {name}, {args.iterations} frames per row")
    for r in rows:
        score = r["psnr_db"]
        table.add_row(r["engine"], r["precision"], r["resolution"], f"{r['fps']:.2f}", f"{r['mean_ms']:.1f}",
                      f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", "ref" if score is None else f"{score:.1f}")
    console = Console()
    console.print(table)
    for s in skipped:
        console.print(f"skipped {s['engine']} {s['precision']}: {s['reason']}", markup=False)
    report = {"style": name, "iterations": args.iterations, "threads": torch.get_num_threads(), "results": rows,
              "skipped": skipped}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


def count_cost(model: nn.Module, height: int, width: int) -> dict[str, float]:
    """Multiply-adds and activation traffic of one frame, from the shapes each layer sees.

    FLOPs count 2 per multiply-add (convolutions only; norms, ReLU, padding are noise beside them).
    ``activation_elements`` counts every leaf layer's input read and output written once (an
    engine that fuses nothing); ``conv_io_elements`` only the convolutions' (pad, norm and ReLU
    fused into them). Multiply by the element size (fp16: 2) for bytes.
    """
    flops, traffic, conv_io = 0.0, 0.0, 0.0
    hooks = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal flops, traffic, conv_io
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            flops += 2.0 * output.numel() * k
            conv_io += inputs[0].numel() + output.numel()
        if not list(module.children()):
            traffic += inputs[0].numel() + output.numel()

    for module in model.modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for h in hooks:
            h.remove()
    weights = sum(p.numel() for p in model.parameters())
    return {"gflops": flops / 1e9, "activation_elements": traffic, "conv_io_elements": conv_io, "weights": float(weights)}
