"""What an offline render is asked to do, as one typed value: :class:`OfflineConfig`.

``offline.py`` maps its arguments onto it; a Python caller or a cluster worker builds one
directly. Defaults live here once (the command line shows these), and :meth:`OfflineConfig.validate`
judges the values together, with the messages a user of the command line reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nstream.errors import NStreamError
from nstream.optimize.losses import LossWeights, default_layers, default_weights

DEFAULT_SIZE = 512
_WEIGHTS = LossWeights()


@dataclass
class OfflineConfig:
    """One render: content and styles in, a still, a video or a folder of frames out."""

    content: str
    styles: list[str]
    output: str | None = None  # default: <content>_<style>.png or .mp4 in the current folder
    style_blend_weights: list[float] | None = None  # default: equal
    resize: int = DEFAULT_SIZE  # longest side of the work (and output) size
    limit_frames: int | None = None
    audio: bool = True
    crf: int | None = None
    work_dir: str | None = None  # default: <output>.work/
    resume: bool = True
    max_frames: int | None = None  # frames to finish in this run, then stop
    content_weight: float = _WEIGHTS.content
    style_weight: float | None = None  # default: the loss network's (default_weights)
    tv_weight: float = _WEIGHTS.tv
    content_layers: list[str] | None = None  # default: the loss network's (default_layers)
    style_layers: list[str] | None = None
    style_scale: float = 1.0
    preserve_colors: bool = False
    iters: tuple[int, int] = (500, 250)  # stills and first frames, later frames
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    early_stopping: float = 1e-4
    init: str = "prev-warped"
    start_from_prev: bool = False
    scales: int = 1
    seed: int = 0
    temporal_loss: bool = True
    temporal_weight: float | None = None  # default: the loss network's (default_weights)
    long_term: list[int] = field(default_factory=lambda: [1])
    passes: int = 1
    pass_iters: int | None = None  # default: half the later-frame iterations
    pass_blend: float = 0.5
    style_from_prev: bool = False
    flow: str = "dis"
    mask: str = "loose"
    loss_net: str = "magenta"  # measured: closer to the painting, 8x cheaper per iteration (docs/BENCHMARKS.md)
    vgg_weights: str | None = None
    device: str = "auto"
    threads: int | None = None

    def validate(self) -> None:
        """Refuse values that cannot work together, before any minute of work (NStreamError)."""
        _check_counts(self)
        if self.style_blend_weights is not None and len(self.style_blend_weights) != len(self.styles):
            raise NStreamError(f"--style-blend-weights has {len(self.style_blend_weights)} values for {len(self.styles)} "
                               "style image(s): give one weight per style")
        if self.style_blend_weights is not None and sum(self.style_blend_weights) <= 0:
            raise NStreamError("--style-blend-weights are all 0: give at least one style a positive weight")
        if not 0.05 <= self.style_scale <= 8:
            raise NStreamError(f"--style-scale {self.style_scale} is out of range: use 0.05 to 8")
        if self.resize < 16:
            raise NStreamError(f"-z/--resize {self.resize} is too small: VGG19 needs at least 16 pixels")
        if self.scales > 6:
            raise NStreamError(f"--scales {self.scales} is too many: use 1 to 6")
        if not 0.0 <= self.pass_blend <= 1.0:
            raise NStreamError(f"--pass-blend {self.pass_blend} is out of range: use 0 to 1")
        if 1 not in self.long_term:
            raise NStreamError(f"--long-term {','.join(map(str, self.long_term))} must include 1 (the previous frame)")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise NStreamError(f"--learning-rate {self.learning_rate} must be positive")
        if self.vgg_weights and self.loss_net != "imagenet":
            raise NStreamError(f"--vgg-weights and --loss-net {self.loss_net} contradict each other: pick one")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise NStreamError(f"--crf {self.crf} is out of range: use 0 (lossless) to 51")

    def layers(self) -> tuple[list[str], list[str]]:
        """(content layers, style layers): the ones asked for, else the loss network's defaults."""
        content, style = default_layers(self.loss_net)
        return list(self.content_layers or content), list(self.style_layers or style)

    def weights(self) -> LossWeights:
        """The loss weights, the temporal one 0 when the temporal loss is off."""
        defaults = default_weights(self.loss_net)
        style = defaults.style if self.style_weight is None else self.style_weight
        temporal = defaults.temporal if self.temporal_weight is None else self.temporal_weight
        return LossWeights(content=self.content_weight, style=style, tv=self.tv_weight,
                           temporal=temporal if self.temporal_loss else 0.0)

    def source_key(self, width: int, height: int) -> dict[str, Any]:
        """What identifies the decoded content frames: a changed input or size decodes again."""
        path = Path(self.content)
        stat = path.stat() if path.exists() else None
        return {"content": str(path.resolve()), "bytes": stat.st_size if stat else None,
                "mtime_ns": stat.st_mtime_ns if stat else None, "width": width, "height": height,
                "limit": self.limit_frames}

    def work_settings(self, transfer: Any, width: int, height: int) -> dict[str, Any]:
        """Everything that shapes a finished frame (not ``passes``: more passes continue the ones done),
        as stored in the work folder; ``transfer`` is the :class:`~.transfer.TransferSettings`."""
        styles = [{"path": str(Path(s).resolve()), "bytes": Path(s).stat().st_size} for s in self.styles]
        return {"size": [width, height], "styles": styles, "blend": self.style_blend_weights,
                "transfer": asdict(transfer), "loss_net": self.loss_net, "vgg_weights": self.vgg_weights,
                "iters": list(self.iters), "init": self.init, "start_from_prev": self.start_from_prev,
                "style_from_prev": self.style_from_prev, "temporal": self.temporal_loss, "long_term": self.long_term,
                "pass_iters": self.pass_iters, "pass_blend": self.pass_blend, "flow": self.flow,
                # Work folders from before --mask were made with Ruder's mask and have no "mask" key:
                # they resume with --mask ruder.
                **({} if self.mask == "ruder" else {"mask": self.mask})}


def _check_counts(config: OfflineConfig) -> None:
    """Counts the command line's own types already check; a Python caller gets the same refusal."""
    counts = {"-i/--iters": min(config.iters), "--passes": config.passes, "--scales": config.scales,
              "--long-term": min(config.long_term, default=0), "-z/--resize": config.resize,
              "--limit-frames": config.limit_frames or 1, "--max-frames": config.max_frames or 1,
              "--pass-iters": config.pass_iters or 1, "--threads": config.threads or 1}
    for name, value in counts.items():
        if value < 1:
            raise NStreamError(f"{name} must be at least 1, got {value}")
    if not config.styles:
        raise NStreamError("no style image: give at least one with -s/--style")
    negative = [name for name in ("content_weight", "style_weight", "tv_weight", "temporal_weight", "early_stopping")
                if getattr(config, name) is not None and not getattr(config, name) >= 0]
    if negative:
        raise NStreamError(f"{negative[0]} must be 0 or more, got {getattr(config, negative[0])}")


def output_kind(output: str, still: bool) -> str:
    """'image', 'video' or 'folder' for ``--output``, refusing what cannot hold the input."""
    from nstream.media.formats import IMAGE_SUFFIXES, VIDEO_CONTAINERS

    suffix = Path(output).suffix.lower()
    if output.endswith(("/", "\\")) or Path(output).is_dir():
        kind = "folder"
    elif suffix in IMAGE_SUFFIXES:
        kind = "image"
    elif suffix in VIDEO_CONTAINERS:
        kind = "video"
    else:
        known = " ".join(sorted(IMAGE_SUFFIXES | set(VIDEO_CONTAINERS)))
        raise NStreamError(f"unsupported output type {suffix or '(none)'!r} for {output}: use one of {known}, or a folder/")
    if still and kind != "image":
        raise NStreamError(f"the content is a still image, so the output must be one too (.png, .jpg), not {output}")
    if not still and kind == "image":
        raise NStreamError(f"the content is a video: write it to a video file (.mp4, .gif, ...) or a folder/, not {output}")
    return kind
