"""Optical flow between two RGB frames behind one callable interface.

``create_flow(name, **options)`` returns a :class:`FlowBackend`; ``backend(a, b)`` gives, for each
pixel x of ``a``, the displacement to where it is in ``b``: ``a(x) ≈ b(x + flow(x))``, so
``warp(b, backend(a, b)) ≈ a`` (see :mod:`nstream.temporal.warp`).

- ``dis`` (default): OpenCV's Dense Inverse Search (the blend's preset: ``balanced``) on a downscaled grey frame,
  upscaled back and its vectors rescaled. Fast on a CPU core; the downscale is what keeps it
  inside a frame's time. By default it works on half the frame, but on no more than
  ``AUTO_MAX_WIDTH`` pixels across (so the cost stops growing with the input) and never on less than
  ``AUTO_MIN_WIDTH``: DIS's finest level is a quarter of what it is given, and below
  that a small moving object's motion is underestimated (a 32-pixel square moving 4 px per frame
  in a 160x96 frame: -1.6 px found at half size, -3.5 at full size) and the blended history lags it.
- ``vectors``: the compressed stream's own motion vectors (:mod:`nstream.temporal.vectors`), DIS
  where a frame carries none.
- ``farneback``: OpenCV's polynomial-expansion flow; slower and smoother. Useful as an
  independent second flow for measuring (E_warp must not use the blending flow).
- ``raft_small`` / ``raft_large``: torchvision RAFT on CUDA with its pretrained weight enums.

A backend keeps per-instance state (OpenCV objects are not thread-safe): give each thread its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from nstream.errors import NStreamError

FLOWS = ("dis", "vectors", "farneback", "raft_small", "raft_large")
# name -> (OpenCV preset, parameters changed from it by setter name)
DIS_PRESETS: dict[str, tuple[int, dict[str, int]]] = {
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, {}),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, {}),
    # the blend's default: medium with a sparser patch grid and fewer iterations, 15-20 % less CPU for
    # the whole temporal stage at 0-1 point of E_warp on four clips and 3 on bikes (docs/BENCHMARKS.md)
    "balanced": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
                 {"PatchStride": 4, "GradientDescentIterations": 12, "VariationalRefinementIterations": 3}),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, {}),
}
BLEND_PRESET = "balanced"
AUTO_MIN_WIDTH = 320  # the automatic DIS working size: half the frame, at least this wide (or the whole frame)
AUTO_MAX_WIDTH = 640  # ... and at most this wide: 1080p at a third (motion step 125 against 231 ms, E_warp -77 % against -81 %)


def _check_frames(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise NStreamError(f"flow needs two frames of one size, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 2:
        raise NStreamError(f"flow needs HxWx3 RGB (or HxW grey) frames, got shape {a.shape}")


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        grey = image
    elif image.shape[2] == 1:
        grey = image[..., 0]
    else:
        grey = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    if grey.dtype != np.uint8:
        grey = np.clip(grey * (255.0 if grey.dtype.kind == "f" and grey.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(grey)


def auto_scale(width: int, fraction: float = 0.5, min_width: int = AUTO_MIN_WIDTH, max_width: int = AUTO_MAX_WIDTH) -> float:
    """Half size (``fraction``), but between ``min_width`` and ``max_width`` pixels across, never above full size."""
    width = max(1, width)
    return min(1.0, min(max(fraction * width, min_width), max_width) / width)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def upscale_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a flow field to HxW and rescale its vectors by the same per-axis ratio."""
    small_h, small_w = flow.shape[:2]
    if (small_h, small_w) == (height, width):
        return flow.astype(np.float32, copy=False)
    big = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    big[..., 0] *= width / small_w
    big[..., 1] *= height / small_h
    return big.astype(np.float32, copy=False)


class RecentFrames:
    """A per-frame function's results for the last ``size`` images it was given, kept by identity: a
    stream passes every frame twice, as x_t and then as x_{t-1}, so each is worked on once."""

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], size: int = 2) -> None:
        self.function = function
        self.size = size
        self.recent: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        found = [item for item in self.recent if item[0] is image]
        item = found[0] if found else (image, self.function(image))
        self.recent = [*(other for other in self.recent if other is not item), item][-self.size:]  # the latest last
        return item[1]


class FlowBackend:
    """``backend(a, b) -> HxWx2 float32`` flow from frame a to frame b (pixels of a's grid)."""

    name = "flow"
    device = "cpu"

    def __init__(self, scale: float | None = 1.0) -> None:
        if scale is not None and not 0.05 <= scale <= 1.0:
            raise NStreamError(f"flow scale {scale} is out of range: use 0.05 to 1 (fraction of the frame size)")
        self.scale = None if scale is None else float(scale)  # None: chosen per frame size (auto_scale)
        self._shrunk = RecentFrames(lambda image: _resize(image, self.working_scale(image.shape[1])))
        self._grey = RecentFrames(_grey, size=4)  # x_t and x_{t-1}, at full and at the working size

    def working_scale(self, width: int) -> float:
        """The fraction of a ``width``-pixel-wide frame the flow runs at."""
        return auto_scale(width) if self.scale is None else self.scale

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _check_frames(a, b)
        height, width = a.shape[:2]
        return upscale_flow(self.compute(self.shrink(a), self.shrink(b)), height, width)

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """A frame at the working size (:meth:`working_scale` of its size), for :meth:`compute`."""
        return self._shrunk(image)

    def grey(self, image: np.ndarray) -> np.ndarray:
        """``image`` as uint8 grey, kept for the next call with the same frame (the blend asks for each twice)."""
        return self._grey(image)

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow between frames already at the working size, in working-size pixels (``__call__`` upscales).

        Callers that need several flows and masks per pair (the blend) work at this size and
        upscale once, which is most of the time saved by a downscaled flow.
        """
        raise NotImplementedError

    def fine(self) -> Any:
        """An OpenCV DIS object for full-size refinement of moving regions (:mod:`nstream.temporal.refine`),
        or None where the backend has none (its flow is not downscaled, or not DIS)."""
        return None

    def scale_text(self) -> str:
        return "auto" if self.scale is None else f"{self.scale:g}"

    def describe(self) -> str:
        return f"{self.name}@{self.scale_text()}"


def _dis(preset: str, settings: dict[str, int] | None) -> Any:
    """An OpenCV DIS object: ``preset``, then each setting by its setter's name."""
    base, tuned = DIS_PRESETS[preset]
    dis = cv2.DISOpticalFlow_create(base)
    for name, value in {**tuned, **(settings or {})}.items():
        setter = getattr(dis, f"set{name}", None)
        if setter is None:
            raise NStreamError(f"DIS has no parameter {name!r}")
        setter(value)
    return dis


class DISFlow(FlowBackend):
    """OpenCV DIS on a grey frame at ``scale`` of the input size (default auto: half size, 320 to 640
    pixels wide), preset medium unless told (the blend asks for ``BLEND_PRESET``)."""

    name = "dis"

    def __init__(self, preset: str = "medium", scale: float | None = None, settings: dict[str, int] | None = None,
                 label: str | None = None, refine_preset: str | None = None) -> None:
        """``settings`` overrides preset parameters by setter name (``{"FinestScale": 0}`` calls
        ``setFinestScale(0)``); ``label`` then names the result in :meth:`describe`; ``refine_preset``
        is the preset of the full-size refinement around moving subjects (default: ``preset``)."""
        super().__init__(scale)
        for name in (preset, refine_preset or preset):
            if name not in DIS_PRESETS:
                raise NStreamError(f"unknown DIS preset {name!r}: use one of {', '.join(DIS_PRESETS)}")
        self.refine_preset = refine_preset or preset
        self.label = label or preset  # the preset, or what the settings made of it
        self.preset = preset
        self.dis = _dis(preset, settings)
        self._fine: Any = None

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.dis.calc(self.grey(a), self.grey(b), None)

    def fine(self) -> Any:
        if self._fine is None:
            self._fine = _dis(self.refine_preset, None)
        return self._fine

    def describe(self) -> str:
        return f"dis/{self.label}@{self.scale_text()}"


class FarnebackFlow(FlowBackend):
    """OpenCV Farneback (5 pyramid levels, 15-pixel window, 3 iterations) on a grey frame."""

    name = "farneback"

    def __init__(self, scale: float = 1.0, levels: int = 5, window: int = 15, iterations: int = 3) -> None:
        super().__init__(scale)
        self.levels, self.window, self.iterations = int(levels), int(window), int(iterations)

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None,
                                            0.5, self.levels, self.window, self.iterations, 5, 1.1, 0)


RAFT_MIN_SIDE = 128


def _raft_parts(variant: str) -> tuple[Any, Any]:
    """torchvision's builder and weight enum for ``raft_small`` or ``raft_large``."""
    from torchvision.models import optical_flow as tvflow

    return {"raft_small": (tvflow.raft_small, tvflow.Raft_Small_Weights),
            "raft_large": (tvflow.raft_large, tvflow.Raft_Large_Weights)}[variant]


class RAFTFlow(FlowBackend):
    """torchvision RAFT (small or large) on CUDA with its pretrained weights from the weight enum.

    RAFT without trained weights is noise, and on a CPU it is far slower than a frame's time, so
    both are refused with one clear line rather than silently giving bad flow.
    """

    def __init__(self, variant: str = "raft_small", scale: float = 1.0, device: str = "cuda", iterations: int = 12,
                 weights: str | None = None) -> None:
        super().__init__(scale)
        import torch

        if not str(device).startswith("cuda") or not torch.cuda.is_available():
            raise NStreamError(f"--flow {variant} needs a CUDA GPU (none here): use --flow dis")
        build, enum = _raft_parts(variant)
        try:
            chosen = enum[weights] if weights else enum.DEFAULT
        except KeyError:
            raise NStreamError(f"unknown {variant} weights {weights!r}: use one of {', '.join(w.name for w in enum)}") from None
        try:
            model = build(weights=chosen, progress=False)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            cache = f"{torch.hub.get_dir()}/checkpoints"
            raise NStreamError(f"{variant} weights {chosen.name} are not in {cache} and could not be downloaded "
                               f"({type(exc).__name__}): use --flow dis") from None
        self._use(model, chosen.transforms(), variant, device, iterations)

    @classmethod
    def untrained(cls, variant: str = "raft_small", device: str = "cpu", iterations: int = 2) -> RAFTFlow:
        """RAFT with random weights, on any device: its flows are noise, but padding, transforms and
        shapes run exactly as with trained weights, so the code path is tested without a GPU."""
        build, enum = _raft_parts(variant)
        flow = cls.__new__(cls)
        FlowBackend.__init__(flow, 1.0)
        flow._use(build(weights=None), enum.DEFAULT.transforms(), variant, device, iterations)
        return flow

    def _use(self, model: object, transforms: object, variant: str, device: str, iterations: int) -> None:
        import torch

        self.name = variant
        self.device = str(device)
        self.iterations = int(iterations)
        self.torch = torch
        self.model = model.eval().to(self.device)  # type: ignore[attr-defined]
        self.transforms = transforms

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        torch = self.torch
        import torch.nn.functional as F

        with torch.inference_mode():
            pair = torch.from_numpy(np.stack([a, b])).to(self.device)
            pair = pair.permute(0, 3, 1, 2)
            first, second = self.transforms(pair[:1], pair[1:])
            height, width = first.shape[-2:]
            # RAFT needs sides divisible by 8 and at least 128 (its correlation pyramid needs 16x16 features)
            pad = (0, max(width + (-width) % 8, RAFT_MIN_SIDE) - width, 0, max(height + (-height) % 8, RAFT_MIN_SIDE) - height)
            first, second = F.pad(first, pad, mode="replicate"), F.pad(second, pad, mode="replicate")
            flow = self.model(first, second, num_flow_updates=self.iterations)[-1][0, :, :height, :width]
            return flow.permute(1, 2, 0).float().cpu().numpy()


def create_flow(name: str = "dis", **options: object) -> FlowBackend:
    """Build a flow backend by name: ``dis`` (options preset, scale), ``vectors`` (the decoder's motion
    vectors, DIS with those options where a frame has none), ``farneback`` (scale, levels,
    window, iterations), ``raft_small``/``raft_large`` (scale, device, iterations, weights)."""
    try:
        if name == "dis":
            return DISFlow(**options)  # type: ignore[arg-type]
        if name == "vectors":
            from nstream.temporal.vectors import VectorFlow

            return VectorFlow(DISFlow(**options))  # type: ignore[arg-type]
        if name == "farneback":
            return FarnebackFlow(**options)  # type: ignore[arg-type]
        if name in ("raft_small", "raft_large"):
            return RAFTFlow(name, **options)  # type: ignore[arg-type]
    except TypeError as exc:
        raise NStreamError(f"bad option for flow {name!r}: {exc}") from None
    raise NStreamError(f"unknown flow {name!r}: use one of {', '.join(FLOWS)}")
