"""Run one offline render from an :class:`~.config.OfflineConfig`: a still, or a video through its work folder.

No argparse and no printing here: progress goes to a view (any :class:`~.video.Hooks`; the
command line passes :class:`~.report.RenderView`), warnings to a callable, and the outcome comes
back as an :class:`OfflineResult`. A cluster worker uses the parts: :func:`build_transfer`,
:class:`VideoJob` and its :meth:`VideoJob.render_frames` for one shot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nstream.devices import pick_device
from nstream.errors import NStreamError
from nstream.optimize.config import OfflineConfig, output_kind
from nstream.optimize.video import FrameReport, Hooks

log = logging.getLogger("nstream.offline")

ViewFactory = Callable[[int, int], Hooks]  # (frames, passes) -> a view, entered around the render
Warn = Callable[[str], None]


class RenderInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a video render; every finished frame stays in the work folder."""

    def __init__(self, finished: int, total: int, work: Path) -> None:
        super().__init__(f"interrupted: {finished} of {total} frames are finished in {work}; "
                         "run the same command again to resume")
        self.finished, self.total, self.work = finished, total, work


@dataclass
class OfflineResult:
    """What a render produced: the output (None while a video is unfinished) and its frames' losses."""

    output: str | None
    frames: int
    width: int
    height: int
    summary: str
    complete: bool = True
    work: str | None = None
    reports: list[FrameReport] = field(default_factory=list)
    terms: dict[str, float] = field(default_factory=dict)
    first_terms: dict[str, float] = field(default_factory=dict)


def transfer_settings(config: OfflineConfig) -> Any:
    """The per-frame optimization settings (:class:`~.transfer.TransferSettings`) of a config."""
    from nstream.optimize.transfer import TransferSettings

    content_layers, style_layers = config.layers()
    return TransferSettings(content_layers=content_layers, style_layers=style_layers, weights=config.weights(),
                            optimizer=config.optimizer, lr=config.learning_rate, tolerance=config.early_stopping,
                            scales=config.scales, style_scale=config.style_scale, seed=config.seed)


def build_transfer(config: OfflineConfig, styles: list[np.ndarray], device: Any) -> Any:
    """The loss network and style targets for ``config`` (a :class:`~.transfer.Transfer`), seeded."""
    import torch

    from nstream.lossnet import build_encoder
    from nstream.optimize.transfer import Transfer

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    settings = transfer_settings(config)
    layers = list(dict.fromkeys(list(settings.content_layers) + list(settings.style_layers)))
    encoder = build_encoder(config.loss_net, layers, "vgg19", config.vgg_weights, seed=config.seed)
    blend = config.style_blend_weights or [1.0] * len(styles)
    feed_forward = feed_forward_stylizer(config.styles, blend) if config.init == "stylized" else None
    return Transfer(encoder, styles, blend, settings, device, feed_forward)


def feed_forward_stylizer(styles: list[str], blend: list[float]) -> Callable[[np.ndarray], np.ndarray]:
    """Magenta's arbitrary-style network with the painting(s) (their style vectors blended by ``blend``):
    image -> stylized image of the same size, the ``--init stylized`` start."""
    from nstream.engines import TorchEngine
    from nstream.models.style_spec import load_style
    from nstream.stylizer import Stylizer

    for path in styles:
        if any(mark in Path(path).name for mark in ":+"):
            raise NStreamError(f"--init stylized cannot name the painting {path}: rename it without ':' or '+'")
    spec = "+".join(f"{path}:{weight}" for path, weight in zip(styles, blend, strict=True))
    style = load_style(spec if len(styles) > 1 else styles[0])
    return Stylizer(TorchEngine(style.model, device="cpu", precision="fp32"), style=style.vector, dark_guard=False)


@dataclass
class _Opened:
    """A checked config with its content open: what a still or a video render starts from."""

    source: Any
    still: bool
    output: str
    kind: str
    width: int
    height: int
    transfer: Any


@contextmanager
def _open(config: OfflineConfig) -> Iterator[_Opened]:
    """Check everything that can be checked before minutes of work, then build the loss network."""
    from nstream.media.sinks import check_writable
    from nstream.media.sources import open_source, read_image
    from nstream.optimize.transfer import fit_size

    config.validate()
    styles = [read_image(path, "style image") for path in config.styles]
    source = open_source(config.content)
    try:
        info = source.info
        still = info.kind == "image"
        output = config.output or f"{info.name}_{Path(config.styles[0]).stem}{'.png' if still else '.mp4'}"
        kind = output_kind(output, still)
        check_writable(output, folder=kind == "folder")  # before minutes of work, not after
        width, height = fit_size(info.width, info.height, config.resize, even=not still)
        device = pick_device(config.device)
        transfer = build_transfer(config, styles, device)
        log.info("work size %dx%d on %s, loss net %s", width, height, device, config.loss_net)
        yield _Opened(source, still, output, kind, width, height, transfer)
    finally:
        source.close()


def render(config: OfflineConfig, view: ViewFactory | None = None, warn: Warn | None = None) -> OfflineResult:
    """Render ``config``: a still straight to its output, a video frame by frame through its work folder."""
    view = view or (lambda frames, passes: Hooks())
    with _open(config) as job:
        if job.still:
            image = next(iter(job.source.frames())).image
            return render_still(config, job.transfer, image, job.width, job.height, job.output, view)
        video = VideoJob(config, job.transfer, job.width, job.height, job.output)
        video.store_content(job.source, warn or log.warning)
        return video.run(job.kind, view)


def prepare_video(config: OfflineConfig, warn: Warn | None = None) -> VideoJob:
    """A video render set up and its content frames in the work folder, ready for
    :meth:`VideoJob.render_frames` of any span (a cluster worker's shot)."""
    with _open(config) as job:
        if job.still:
            raise NStreamError(f"{config.content} is a still image, not a video")
        video = VideoJob(config, job.transfer, job.width, job.height, job.output)
        video.store_content(job.source, warn or log.warning)
        return video


def render_still(config: OfflineConfig, transfer: Any, image: np.ndarray, width: int, height: int, output: str,
                 view: ViewFactory) -> OfflineResult:
    """Optimize one image from the content (or seeded noise) and save it."""
    from PIL import Image

    from nstream.colors import preserve_colors_uint8
    from nstream.optimize.report import summary
    from nstream.optimize.transfer import fresh_start, resize

    content = resize(image, width, height)
    started = time.perf_counter()
    iterations = config.iters[0]
    with view(1, 1) as hooks:
        hooks.frame_started(0, 0, iterations)
        start = transfer.start_image(content, fresh_start(config.init))
        result, run = transfer.stylize(content, start, iterations, on_step=hooks.step)
        report = FrameReport(0, 0, run.iterations, time.perf_counter() - started, run.terms, run.first_terms, run.stopped)
        hooks.frame_done(report)
    if config.preserve_colors:
        result = preserve_colors_uint8(result, content)
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(path)
    except (OSError, ValueError) as exc:
        raise NStreamError(f"cannot write {output} ({exc})") from None
    return OfflineResult(output=output, frames=1, width=width, height=height,
                         summary=summary([report], 0, time.perf_counter() - started), reports=[report],
                         terms=run.terms, first_terms=run.first_terms)


class VideoJob:
    """A video render: its work folder (checked against the config, resumable), flows and passes."""

    def __init__(self, config: OfflineConfig, transfer: Any, width: int, height: int, output: str) -> None:
        from nstream.optimize.workfolder import WorkFolder

        self.config, self.transfer = config, transfer
        self.width, self.height, self.output = width, height, output
        self.work = WorkFolder(Path(config.work_dir or f"{output.rstrip('/')}.work"))
        self.work.prepare(config.work_settings(transfer.settings, width, height), config.resume)
        self.count = self.work.count()
        self.flows: Any = None
        self.started = time.perf_counter()

    def store_content(self, source: Any, warn: Warn) -> int:
        """Decode and keep the input frames at the work size, unless the work folder has them already."""
        key = self.config.source_key(self.width, self.height)
        count = self.work.content_ready(key)
        if count is None:
            count = self.work.store_content((f.image for f in source.frames()), key, self.width, self.height,
                                            self.config.limit_frames)
            for warning in source.warnings:
                warn(warning)
        if count == 0:
            raise NStreamError(f"{self.config.content} has no decodable video frames")
        self.count = count
        return count

    def settings(self) -> Any:
        """The Ruder choices of the config (:class:`~.video.VideoSettings`)."""
        from nstream.optimize.video import VideoSettings

        c = self.config
        return VideoSettings(iterations_first=c.iters[0], iterations_rest=c.iters[1], init=c.init,
                             start_from_prev=c.start_from_prev, style_from_prev=c.style_from_prev,
                             temporal=c.temporal_loss, long_term=c.long_term, passes=c.passes,
                             pass_iterations=c.pass_iters or max(1, c.iters[1] // 2), pass_blend=c.pass_blend,
                             max_frames=c.max_frames)

    def open_flows(self) -> Any:
        """The flow cache, if anything needs flow (a temporal loss, a warped start or passes)."""
        from nstream.optimize.video import WARPED_STARTS
        from nstream.optimize.workfolder import FlowCache
        from nstream.temporal import create_flow
        from nstream.temporal.occlusion import TOLERANCES

        c = self.config
        if self.flows is None and self.count > 1 and (c.temporal_loss or c.init in WARPED_STARTS or c.passes > 1):
            options: dict[str, Any] = {"preset": "medium", "scale": 1.0} if c.flow == "dis" else {}
            backend = create_flow(c.flow, **options)
            name = backend.describe() + ("" if c.mask == "ruder" else f" mask={c.mask}")  # old caches: Ruder's masks
            self.flows = FlowCache(self.work, backend, name, TOLERANCES[c.mask])
        return self.flows

    def render_frames(self, start: int = 0, stop: int | None = None, hooks: Hooks | None = None
                      ) -> tuple[list[FrameReport], bool]:
        """Render frames ``[start, stop)`` (a shot) into the work folder; (reports, complete)."""
        from nstream.optimize.video import render_frames

        return render_frames(self.work, self.transfer, self.open_flows(), self.settings(), hooks, start, stop)

    def run(self, kind: str, view: ViewFactory) -> OfflineResult:
        """Every frame over every pass, then the output; stops early at ``max_frames``."""
        from nstream.optimize.report import summary
        from nstream.optimize.video import finished_frames

        passes = self.config.passes
        self.open_flows()
        already = finished_frames(self.work, passes, 0, self.count)
        try:
            with view(self.count, passes) as hooks:
                reports, complete = self.render_frames(0, self.count, hooks)
        except KeyboardInterrupt:
            raise RenderInterrupted(finished_frames(self.work, passes, 0, self.count), self.count * passes,
                                    self.work.root) from None
        text = summary(reports, already, time.perf_counter() - self.started, self.flows.seconds if self.flows else 0.0)
        if complete:
            self.write_output(kind)
        return OfflineResult(output=self.output if complete else None, frames=self.count, width=self.width,
                             height=self.height, summary=text, complete=complete, work=str(self.work.root),
                             reports=reports)

    def write_output(self, kind: str) -> None:
        """Mux the last pass's frames with the input's timing and audio."""
        from nstream.colors import preserve_colors_uint8
        from nstream.optimize.mux import write_video
        from nstream.optimize.workfolder import read_png

        c = self.config

        def frame(index: int) -> np.ndarray:
            image = read_png(self.work.frame_path(c.passes - 1, index))
            return preserve_colors_uint8(image, self.work.content(index)) if c.preserve_colors else image

        write_video(c.content, self.output, kind, frame, self.count, self.width, self.height, c.audio, c.crf)
