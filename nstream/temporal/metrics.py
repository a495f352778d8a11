"""How steady and how stylized a stylized video is.

Warping error E_warp (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): for
each pair of consecutive frames, the flow between the *input* frames x_t -> x_{t+1} aligns the
output O_{t+1} with O_t, and the squared difference is averaged over the pixels (and the three
channels) the occlusion check keeps, with frames in [0, 1]; E_warp is the mean over pairs. A
perfectly steady stylization scores about 0; per-frame flicker raises it. Use a flow other than
the one the blend used (:data:`METRIC_FLOWS`), or the number flatters the blend. Pairs across a
scene cut (histogram check on the input) are left out: there is nothing to align.

Style fidelity: the Gram-matrix style loss of each output frame against the style image through
VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3 (what the trainer optimizes), via
:mod:`nstream.lossnet`. ImageNet VGG weights cannot be downloaded on the project's machines, so
the default is ``loss_net="random"``: a seeded random VGG, whose Gram statistics still track
texture, good for comparing settings against each other on one machine, not for comparing with
published numbers. Lower is closer to the style.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nstream.temporal.flow import FlowBackend, create_flow
from nstream.temporal.occlusion import reliability_mask
from nstream.temporal.scenecut import DEFAULT_CUT_THRESHOLD, SceneCutDetector
from nstream.temporal.warp import warp

# The blend runs DIS (medium, half size, 320 to 640 px wide); the measuring flow must be another.
METRIC_FLOWS = {
    # DIS at full size down to its finest pyramid level (patch stride 2, 50 descent and 10 refinement
    # iterations): no blending setting reaches it. The most accurate flow here: FlyingChairs EPE 3.84
    # against 4.42 for DIS medium and 4.92 for Farneback; 120 ms a pair, fine for measuring.
    "dis-fine": {"name": "dis", "preset": "medium", "scale": 1.0, "label": "fine",
                 "settings": {"FinestScale": 0, "PatchStride": 2, "GradientDescentIterations": 50,
                              "VariationalRefinementIterations": 10}},
    # Independent of DIS altogether, but it fails on fast motion: on bikes.mp4 the *input's* own
    # E_warp by Farneback is 5x what DIS finds (8.9e-4 against 1.6e-4), hiding what blending does.
    "farneback": {"name": "farneback", "scale": 1.0},
}
DEFAULT_METRIC_FLOW = "dis-fine"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass
class PairFlow:
    """Flow x_t -> x_{t+1} and the non-occlusion mask over frame t, computed once per input pair."""

    flow: np.ndarray
    mask: np.ndarray


def metric_flow(name: str = DEFAULT_METRIC_FLOW) -> FlowBackend:
    """The measuring flow by its :data:`METRIC_FLOWS` name."""
    options = dict(METRIC_FLOWS[name])
    return create_flow(str(options.pop("name")), **options)


def measure_pairs(inputs: Sequence[np.ndarray], flow: FlowBackend | None = None,
                  cut_threshold: float | None = DEFAULT_CUT_THRESHOLD,
                  on_pair: Callable[[], None] | None = None) -> list[PairFlow | None]:
    """For every consecutive input pair: its flow and mask, or None across a scene cut
    (``on_pair`` is called after each: a progress bar)."""
    flow = flow or metric_flow()
    detector = SceneCutDetector(cut_threshold)
    pairs: list[PairFlow | None] = []
    for first, second in zip(inputs[:-1], inputs[1:], strict=True):
        if detector.is_cut(detector.compare(first, second)):
            pairs.append(None)
        else:
            forward = flow(first, second)
            pairs.append(PairFlow(forward, reliability_mask(forward, flow(second, first))))
        if on_pair is not None:
            on_pair()
    return pairs


def pair_warping_errors(outputs: Sequence[np.ndarray], pairs: Sequence[PairFlow | None],
                        min_motion: float = 0.0) -> list[float]:
    """Per pair t: mean over non-occluded pixels and channels of (O_t - warp(O_{t+1}))^2, frames in [0,1].

    ``min_motion`` > 0 counts only pixels that move more than that many pixels between the inputs
    (people, cars: where viewers look); pairs with fewer than 64 such pixels are left out."""
    if len(outputs) != len(pairs) + 1:
        raise ValueError(f"{len(outputs)} output frames need {len(outputs) - 1} pairs, got {len(pairs)}")
    errors = []
    for t, pair in enumerate(pairs):
        if pair is None:
            continue
        mask = pair.mask if min_motion <= 0 else pair.mask * moving(pair.flow, min_motion)
        if mask.sum() < (64 if min_motion > 0 else 1):
            continue
        current = outputs[t].astype(np.float32) / 255.0
        aligned = warp(outputs[t + 1].astype(np.float32) / 255.0, pair.flow)
        squared = ((current - aligned) ** 2).reshape(*current.shape[:2], -1).mean(axis=2)
        errors.append(float((squared * mask).sum() / mask.sum()))
    return errors


def moving(flow: np.ndarray, min_motion: float) -> np.ndarray:
    """float32 HxW: 1 where the flow moves a pixel by more than ``min_motion`` pixels."""
    return ((flow[..., 0] ** 2 + flow[..., 1] ** 2) > min_motion * min_motion).astype(np.float32)


def excess_removed(input_error: float, off_error: float, blended_error: float) -> float | None:
    """Share of the *excess* flicker the blend removed: (E_off - E_blended) / (E_off - E_input).

    The input's own E_warp is the floor no stylization goes below for long (noise, lighting, the
    metric flow's own errors), so this says how much of what stylizing added the blend took away.
    None when per-frame stylization adds nothing over the input (nothing to remove)."""
    excess = off_error - input_error
    if excess <= 0:
        return None
    return (off_error - blended_error) / excess


def warping_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray] | None = None,
                  pairs: Sequence[PairFlow | None] | None = None, flow: FlowBackend | None = None) -> float:
    """E_warp of a stylized sequence; flows come from ``inputs`` (or precomputed ``pairs``)."""
    if pairs is None:
        if inputs is None:
            raise ValueError("warping_error needs the input frames or precomputed pairs")
        pairs = measure_pairs(inputs, flow)
    errors = pair_warping_errors(outputs, pairs)
    return float(np.mean(errors)) if errors else 0.0


class StyleFidelity:
    """``fidelity(frames) -> mean Gram style loss`` against one style image (lower = closer).

    Through a seeded random VGG16 (relu1_2..relu4_3, plain Gram matrices) or ``magenta``: the
    style predictor's MobileNetV2 at its style layers, smoothed as the loss sees them.
    """

    def __init__(self, style_image: np.ndarray | str | Path, loss_net: str = "random", size: int = 256,
                 device: str = "cpu", seed: int = 0) -> None:
        import torch

        from nstream.losses import style_gram
        from nstream.lossnet import MAGENTA_STYLE_LAYERS, build_encoder

        self.torch = torch
        self.layers = list(MAGENTA_STYLE_LAYERS if loss_net == "magenta" else STYLE_LAYERS)
        self.size, self.device = size, device
        self.encoder = build_encoder(loss_net, self.layers, "vgg16", seed=seed).to(device).eval()
        smooth = self.encoder.smooth_style
        self.gram = lambda features: style_gram(features, smooth)
        image = _read_image(style_image) if not isinstance(style_image, np.ndarray) else style_image
        with torch.inference_mode():
            self.targets = {k: self.gram(v) for k, v in self.encoder(self._tensor(image)).items()}

    def _tensor(self, image: np.ndarray) -> object:
        import cv2

        height, width = image.shape[:2]
        scale = self.size / max(height, width)
        if scale < 1:
            image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        x = self.torch.from_numpy(np.ascontiguousarray(image[..., :3])).to(self.device).permute(2, 0, 1)[None].float()
        return x / 255.0

    def __call__(self, frames: Sequence[np.ndarray]) -> float:
        losses = []
        with self.torch.inference_mode():
            for frame in frames:
                features = self.encoder(self._tensor(frame))
                losses.append(sum(float(((self.gram(features[k]) - self.targets[k]) ** 2).sum()) for k in self.layers))
        return float(np.mean(losses)) if losses else 0.0


def _read_image(path: str | Path) -> np.ndarray:
    import cv2

    from nstream.errors import NStreamError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise NStreamError(f"cannot read style image {path}: give a JPEG or PNG file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
