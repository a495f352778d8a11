"""The compressed stream's own motion vectors as a flow field: motion the encoder already searched for.

FFmpeg exports the vectors a decoder reads (``flags2=+export_mvs``; PyAV: the frame's
``MOTION_VECTORS`` side data, a structured array with one row per block: ``source`` (< 0: a past
reference, > 0: a future one), block size ``w`` x ``h``, block centres ``src_x/src_y`` in the
reference and ``dst_x/dst_y`` in this frame, and ``motion_x/motion_y`` in 1/``motion_scale`` pixels,
with src = dst + motion / scale). For a block of frame t predicted from the previous frame,
motion / scale is exactly the blend's flow(x_t, x_{t-1}) there, at no cost beyond decoding.

What it cannot say: which past frame a block refers to (H.264 and HEVC may predict from several,
and B-frames from an anchor up to a few frames back), and anything about intra-coded blocks and
I-frames (no vectors). :func:`usable_vectors` therefore takes the past-reference vectors of a
frame only when the stream has no B-frames, and :func:`vectors_to_flow` marks where a flow came
from them (the rest falls back to DIS, see :mod:`nstream.temporal.blend`). The vectors also serve as
DIS's initial flow. Measured in docs/BENCHMARKS.md ("Motion vectors").
"""

from __future__ import annotations

from typing import Any, NamedTuple

import cv2
import numpy as np

from nstream.temporal.flow import FlowBackend

CELL = 4  # the smallest block any codec here predicts (H.264 4x4; MPEG-4 parts are 8x8 and up)


class CodedVectors(NamedTuple):
    """One decoded frame's motion vectors and the coded frame size they are in (Frame.vectors)."""

    vectors: np.ndarray
    height: int
    width: int


def frame_vectors(vframe: Any) -> np.ndarray | None:
    """The MOTION_VECTORS side data of a PyAV video frame as a numpy structured array, or None."""
    side = getattr(vframe, "side_data", None)
    if side is None:
        return None
    try:
        vectors = side.get("MOTION_VECTORS")
    except (KeyError, ValueError, TypeError):
        return None
    return None if vectors is None else vectors.to_ndarray()


def usable_vectors(vectors: np.ndarray | None) -> np.ndarray | None:
    """The rows that predict from a past frame, or None when there are none (an I-frame)."""
    if vectors is None or len(vectors) == 0:
        return None
    past = vectors[vectors["source"] < 0]
    return past if len(past) else None


def vectors_to_flow(vectors: np.ndarray, height: int, width: int, out_size: tuple[int, int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Flow(x_t, x_{t-1}) of a ``height`` x ``width`` coded frame from its past-reference vectors, and a
    float32 mask of where it is known (1) or intra-coded (0); both at ``out_size`` (w, h) if given,
    the vectors rescaled with it. Blocks are painted on a 4-pixel grid, then resized bilinearly."""
    rows, cols = -(-height // CELL), -(-width // CELL)
    flow = np.zeros((rows, cols, 2), np.float32)
    known = np.zeros((rows, cols), np.float32)
    scale = np.maximum(vectors["motion_scale"].astype(np.float32), 1.0)
    cells_w = np.maximum(1, vectors["w"].astype(np.int64) // CELL)
    cells_h = np.maximum(1, vectors["h"].astype(np.int64) // CELL)
    left = (vectors["dst_x"].astype(np.int64) - vectors["w"].astype(np.int64) // 2) // CELL
    top = (vectors["dst_y"].astype(np.int64) - vectors["h"].astype(np.int64) // 2) // CELL
    # every block as its cells, in one pass: block index and the cell's rank inside its block
    counts = cells_w * cells_h
    block = np.repeat(np.arange(len(vectors)), counts)
    rank = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    ys = np.clip(top[block] + rank // cells_w[block], 0, rows - 1)
    xs = np.clip(left[block] + rank % cells_w[block], 0, cols - 1)
    flow[ys, xs, 0] = (vectors["motion_x"].astype(np.float32) / scale)[block]
    flow[ys, xs, 1] = (vectors["motion_y"].astype(np.float32) / scale)[block]
    known[ys, xs] = 1.0
    target_w, target_h = out_size if out_size is not None else (width, height)
    big = cv2.resize(flow, (target_w, target_h), interpolation=cv2.INTER_LINEAR)
    big[..., 0] *= target_w / width
    big[..., 1] *= target_h / height
    return big, cv2.resize(known, (target_w, target_h), interpolation=cv2.INTER_NEAREST)


class VectorFlow(FlowBackend):
    """The coded motion vectors of the current frame as the blend's flow, DIS where a frame has none.

    Stateful: :meth:`use` hands it the vectors of the frame the next :meth:`compute` is for (the
    caller runs both on one thread). Intra-coded blocks get zero motion there; the photometric check
    then leaves them out wherever something moved.
    """

    name = "vectors"

    def __init__(self, fallback: FlowBackend | None = None) -> None:
        from nstream.temporal.flow import DISFlow

        self.fallback = fallback or DISFlow()
        super().__init__(self.fallback.scale)
        self.pending: tuple[np.ndarray, int, int] | None = None
        self.fallbacks = 0

    def use(self, coded: CodedVectors | None) -> None:
        """The next :meth:`compute` is for the frame these vectors came with (None: a frame without)."""
        past = None if coded is None else usable_vectors(coded.vectors)
        self.pending = None if past is None else (past, coded.height, coded.width)

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        pending, self.pending = self.pending, None
        if pending is None:
            self.fallbacks += 1
            return self.fallback.compute(a, b)
        vectors, height, width = pending
        return vectors_to_flow(vectors, height, width, (a.shape[1], a.shape[0]))[0]

    def fine(self) -> Any:
        return self.fallback.fine()

    def describe(self) -> str:
        return f"vectors+{self.fallback.describe()}"
