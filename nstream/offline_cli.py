"""``offline.py``: Gatys et al. style transfer by optimization, with Ruder et al.'s video constraints.

Slow and thorough where ``stream.py`` is fast: every image or frame is optimized pixel by pixel
against a loss network's content and style features. Stills give a still; videos (and GIFs, and
folders of images) give a video with the input's timing and audio, rendered frame by frame into a
work folder so that a stopped render continues where it stopped.

This module only parses: the options become an :class:`~nstream.optimize.config.OfflineConfig`,
:func:`nstream.optimize.render.render` does the work, and the outcome is printed here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nstream.cli_args import BooleanOption, HelpFormatter, Parser, int_list, names, non_negative, positive_int, run_guarded

if TYPE_CHECKING:  # the config imports PyTorch, which the light install lacks: main() says so first
    from nstream.optimize.config import OfflineConfig


def _iterations(text: str) -> tuple[int, int]:
    """``500`` or ``500,250``: first frame (and stills), later frames."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"use N or FIRST,LATER, got {text!r}")
    values = [positive_int(p.strip()) for p in parts]
    return values[0], values[-1]


def build_parser() -> argparse.ArgumentParser:
    """The ``offline.py`` options; their defaults are :class:`OfflineConfig`'s."""
    from nstream.lossnet import LOSS_NETS
    from nstream.optimize.config import OfflineConfig
    from nstream.optimize.loop import OPTIMIZERS
    from nstream.optimize.transfer import INITS
    from nstream.temporal import FLOWS
    from nstream.temporal.occlusion import TOLERANCES

    d = OfflineConfig("", [])
    bool_opt = BooleanOption
    p = Parser(
        prog="offline.py", formatter_class=HelpFormatter,
        description="Style transfer by optimization (Gatys et al. 2015) for stills, GIFs and videos, with Ruder et al. "
                    "(2016) temporal constraints for videos. Slow, thorough, resumable.",
        epilog="example: offline.py -c photo.jpg -s starry.jpg -o out.png;  "
               "offline.py -c clip.mp4 -s a.jpg b.jpg --style-blend-weights 0.7 0.3 -o out.mp4 --long-term 1,2,4 --passes 3")
    io = p.add_argument_group("input and output")
    io.add_argument("-c", "--content", required=True, help="content: an image, a GIF, any video file, or a folder/glob of images")
    io.add_argument("-s", "--style", nargs="+", required=True, metavar="IMAGE",
                    help="style image(s); several are blended by --style-blend-weights")
    io.add_argument("--style-blend-weights", "--style_blend_weights", nargs="+", type=non_negative, metavar="W",
                    help="one weight per style image (normalized to sum 1); default: equal")
    io.add_argument("-o", "--output",
                    help="an image for a still input; .mp4 .mkv .mov .webm .gif ... or a folder/ for videos "
                         "(default: <content>_<style>.png or .mp4 in the current folder)")
    io.add_argument("-z", "--resize", type=positive_int, default=d.resize,
                    help="work (and output) size: longest side in pixels; inputs are only ever scaled down")
    io.add_argument("--limit-frames", type=positive_int, help="use only the first N frames of a video")
    io.add_argument("--audio", action=bool_opt, default=d.audio, help="copy the input's audio into a video output")
    io.add_argument("--crf", type=int, help="x264 constant quality of a video output (default 18)")
    io.add_argument("--work-dir", help="where finished frames, flows and masks are kept (default: <output>.work/)")
    io.add_argument("--resume", action=bool_opt, default=d.resume,
                    help="continue a stopped render from the frames in the work folder; --no-resume starts over")
    io.add_argument("--max-frames", type=positive_int,
                    help="finish at most this many frames in this run, then stop (run again to continue)")
    loss = p.add_argument_group("losses")
    loss.add_argument("-w", "--content_weight", "--content-weight", type=non_negative, default=d.content_weight,
                      help="how strongly the result keeps the content's features")
    loss.add_argument("-y", "--style_weight", "--style-weight", type=non_negative, default=d.style_weight,
                      help="how strongly it takes the style's Gram statistics (default: 10 on the VGG19s, 100 on magenta; "
                           "relative errors: a weight means the same at any size and on either VGG19)")
    loss.add_argument("--tv-weight", "--tv_weight", type=non_negative, default=d.tv_weight,
                      help="total-variation smoothing against high-frequency noise")
    loss.add_argument("--content-layers", type=names, default=d.content_layers, metavar="L1,L2",
                      help="loss-network layers for the content loss (default: relu4_2 on the VGG19s, block10 on magenta)")
    loss.add_argument("--style-layers", type=names, default=d.style_layers, metavar="L1,L2",
                      help="loss-network layers for the style loss (default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 on "
                           "the VGG19s, stem,block1,block3,block6,block10,block13 on magenta)")
    loss.add_argument("--style-scale", type=float, default=d.style_scale,
                      help="style image size relative to the output's longest side: smaller gives finer brush strokes")
    loss.add_argument("--preserve-colors", "--preserve_colors", action=bool_opt, default=d.preserve_colors,
                      help="keep the content's colours: only the luminance is stylized (Gatys et al. 2016)")
    opt = p.add_argument_group("optimization")
    opt.add_argument("-i", "--iters", type=_iterations, default=d.iters, metavar="N[,LATER]",
                     help="iterations for stills and a video's first frame, and (after a comma) for later frames, which "
                          "start from the warped previous result and need fewer")
    opt.add_argument("-a", "--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                     help="lbfgs: best per iteration (Gatys); adam: cheaper steps, more of them")
    opt.add_argument("--learning-rate", type=float, help="step size (default 1 for lbfgs, 0.02 for adam)")
    opt.add_argument("-e", "--early_stopping", "--early-stopping", type=non_negative, default=d.early_stopping,
                     help="stop a frame when the loss falls by less than this fraction per iteration (mean over the "
                          "last 10); 0 always runs all iterations")
    opt.add_argument("-I", "--target_start", "--init", choices=INITS, default=d.init,
                     help="start image: the content, seeded noise, the arbitrary-style network's picture of the content "
                          "with the same painting(s) (stylized), or (video frames after the first) the previous result "
                          "warped by the optical flow, the content (stylized: that picture) filling where the flow is "
                          "unreliable")
    opt.add_argument("-p", "--start_from_prev", "--start-from-prev", action=bool_opt, default=d.start_from_prev,
                     help="start each video frame from the previous result as it is, not warped (for footage where the "
                          "flow fails)")
    opt.add_argument("--scales", type=positive_int, default=d.scales,
                     help="coarse-to-fine: optimize at 1/2^(N-1) size first and refine up to full size; helps large outputs")
    opt.add_argument("--seed", type=int, default=d.seed, help="seed for the random start and the random loss network")
    video = p.add_argument_group("video (Ruder et al. 2016)")
    video.add_argument("-T", "--temporal_loss", "--temporal-loss", action=bool_opt, default=d.temporal_loss,
                       help="penalize changes from the warped earlier results where the flow is reliable")
    video.add_argument("-W", "--temporal_weight", "--temporal-weight", type=non_negative, default=d.temporal_weight,
                       help="weight of the temporal loss (default: 50 on the VGG19s, 500 on magenta: five times the "
                            "style weight on either)")
    video.add_argument("--long-term", type=int_list, default=d.long_term, metavar="J1,J2",
                       help="earlier frames the temporal loss looks back to, e.g. 1,2,4 (Ruder's long-term consistency); "
                            "each pixel counts only for the closest frame where it is visible")
    video.add_argument("--passes", type=positive_int, default=d.passes,
                       help="multi-pass: after the first pass, alternate backward and forward passes that blend each "
                            "frame with its warped neighbour (Ruder's multi-pass algorithm)")
    video.add_argument("--pass-iters", type=positive_int,
                       help="iterations per frame in passes after the first (default: half the later-frame iterations)")
    video.add_argument("--pass-blend", type=float, default=d.pass_blend,
                       help="multi-pass blend: how much of the warped neighbour enters a frame's start image (Ruder's delta)")
    video.add_argument("-Y", "--style_from_prev", "--style-from-prev", action=bool_opt, default=d.style_from_prev,
                       help="also take style statistics from the previous result (as much as from the style images), "
                            "so the texture drifts less between frames")
    video.add_argument("--flow", choices=FLOWS, default=d.flow, help="optical flow between input frames")
    video.add_argument("--mask", choices=tuple(TOLERANCES), default=d.mask,
                       help="where the flow counts as reliable: Ruder's forward-backward and motion-boundary constants "
                            "(ruder, made for more accurate flows than DIS) or looser ones (loose, default: E_warp "
                            "-24 %% on carphone; docs/BENCHMARKS.md)")
    net = p.add_argument_group("loss network and device")
    net.add_argument("--loss-net", choices=LOSS_NETS, default=d.loss_net,
                     help="imagenet: torchvision's VGG19 weights (downloaded once, or --vgg-weights); random: a seeded "
                          "random VGG19 with average pooling (no download; still transfers style); magenta: the "
                          "MobileNetV2 of Magenta's style predictor (shipped, trained from ImageNet)")
    net.add_argument("--vgg-weights", help="a torchvision VGG19 state dict file to use instead of downloading")
    net.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda or cuda:N")
    net.add_argument("--threads", type=positive_int,
                     help="CPU threads for torch (default: torch's choice, all cores); on a busy machine 1 can be much faster")
    net.add_argument("--progress", action=bool_opt, default=True, help="progress bars (plain lines when not a terminal)")
    net.add_argument("-v", "--verbose", action="store_true")
    from nstream.cluster.offline import add_arguments

    add_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> OfflineConfig:
    """The parsed options as a render configuration."""
    from nstream.optimize.config import OfflineConfig

    return OfflineConfig(
        content=args.content, styles=list(args.style), output=args.output, style_blend_weights=args.style_blend_weights,
        resize=args.resize, limit_frames=args.limit_frames, audio=args.audio, crf=args.crf, work_dir=args.work_dir,
        resume=args.resume, max_frames=args.max_frames, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, content_layers=args.content_layers,
        style_layers=args.style_layers, style_scale=args.style_scale, preserve_colors=args.preserve_colors,
        iters=tuple(args.iters), optimizer=args.optimizer, learning_rate=args.learning_rate,
        early_stopping=args.early_stopping, init=args.target_start, start_from_prev=args.start_from_prev,
        scales=args.scales, seed=args.seed, temporal_loss=args.temporal_loss, temporal_weight=args.temporal_weight,
        long_term=args.long_term, passes=args.passes, pass_iters=args.pass_iters, pass_blend=args.pass_blend,
        style_from_prev=args.style_from_prev, flow=args.flow, mask=args.mask, loss_net=args.loss_net,
        vgg_weights=args.vgg_weights, device=args.device, threads=args.threads)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Render what the options ask for and print the outcome; returns the result's fields."""
    from functools import partial

    from nstream.optimize.render import render
    from nstream.optimize.report import RenderView

    if args.cluster or args.shots:  # shots (and chunks) as tasks: nstream/cluster/offline.py
        from nstream.cluster.offline import run_split

        return run_split(config_from_args(args), args)
    result = render(config_from_args(args), view=partial(RenderView, enabled=args.progress),
                    warn=lambda text: print(f"warning: {text}", file=sys.stderr))
    print(result.summary)
    if result.frames == 1 and result.work is None:
        print(f"wrote {result.output} ({result.width}x{result.height})")
    elif not result.complete:
        print(f"stopped after {len(result.reports)} frame(s) (--max-frames): the finished frames are in {result.work}; "
              "run the same command again to continue")
    else:
        print(f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}); "
              f"frames kept in {result.work}")
    return vars(result)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``offline.py``: exit 0 on success, 2 with one ``error:`` line on bad input."""
    from nstream.engines.graph_engine import torch_installed

    if not torch_installed():
        from nstream.cli import requires_torch

        return requires_torch("offline.py (optimization on a loss network)")
    from nstream.memory import reuse_frame_buffers

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    reuse_frame_buffers()  # the optimizer's activations too: 3-4 % less wall time at 384 px (nstream/memory.py)
    return run_guarded(lambda: run(args), sigterm_interrupts=True)
