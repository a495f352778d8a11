"""The one frame type that travels through the pipeline, and what a source says about itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass
class Frame:
    """Pixels plus the timing they came with: timing is carried, never invented.

    ``image`` is HxWx3 uint8 RGB. ``captured`` is ``time.monotonic()`` when the frame left
    the decoder, the start of its end-to-end latency. ``audio`` holds the compressed audio
    packets demuxed since the previous video frame, so sinks can interleave them in order.
    """

    image: np.ndarray
    index: int
    pts: int | None
    time_base: Fraction
    captured: float
    audio: list[Any] = field(default_factory=list)
    name: str | None = None  # source file name, for image sequences
    ahead: dict[str, Any] = field(default_factory=dict)  # work a later stage started on it early (see Pipeline.prepare)
    # the decoder's motion vectors against the previous frame, when the source was asked for them
    # (open_source(motion_vectors=True)): a nstream.temporal.vectors.CodedVectors, else None
    vectors: Any = None

    @property
    def seconds(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)


@dataclass
class SourceInfo:
    """What sinks need to know before the first frame arrives."""

    name: str
    width: int
    height: int
    rate: Fraction
    time_base: Fraction
    live: bool
    kind: str  # file, image, images, webcam, network
    frame_count: int | None = None
    audio_stream: Any = None  # a PyAV input audio stream whose packets ride on frames
    extra: dict[str, Any] = field(default_factory=dict)
