"""Where a file's shots are, and a source that reads only frames [begin, end) of it.

A shot boundary here is exactly where the temporal stage resets its history: the colour-histogram
distance between two consecutive *input* frames above the ``--scene-cut`` threshold
(:func:`nstream.temporal.blend.estimate_motion` runs the same test first). After a reset the stage
holds the fresh stylization and nothing else, which is also how a new session starts; so a shot
stylized on its own gives the frames the whole-file run gives. (The other reset, a failed flow, is
not known before the flow runs, and it lies inside a shot.)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.media.sources import FileSource, Source
from nstream.temporal.scenecut import SceneCutDetector


@dataclass
class Scan:
    """A file's frames as the file source numbers them: their pts and where each shot starts."""

    pts: list[int]
    starts: list[int]  # first frame of each shot; starts[0] == 0

    @property
    def count(self) -> int:
        return len(self.pts)

    def shots(self) -> list[tuple[int, int]]:
        """[(begin, end), ...] of every shot, in order."""
        ends = self.starts[1:] + [self.count]
        return list(zip(self.starts, ends, strict=True))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"pts": self.pts, "starts": self.starts}))

    @classmethod
    def load(cls, path: Path) -> Scan | None:
        try:
            data = json.loads(path.read_text())
            return cls(pts=[int(p) for p in data["pts"]], starts=[int(s) for s in data["starts"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def scan_shots(path: str, threshold: float | None) -> Scan:
    """Decode ``path`` once through the file source and find its shot starts (``threshold`` None: one shot)."""
    detector = SceneCutDetector(threshold)
    source = FileSource(path, keep_audio=False)
    pts: list[int] = []
    starts = [0]
    try:
        for frame in source.frames():
            distance = detector.distance(frame.image)
            if frame.index and detector.is_cut(distance):
                starts.append(frame.index)
            pts.append(frame.pts if frame.pts is not None else frame.index)
    finally:
        source.close()
    return Scan(pts=pts, starts=starts)


def group_shots(shots: list[tuple[int, int]], min_frames: int) -> list[tuple[int, int]]:
    """Join neighbouring shots until each piece has at least ``min_frames`` (a new session per
    two-frame shot would cost more in start-up than it saves); the last piece may be shorter."""
    pieces: list[tuple[int, int]] = []
    for begin, end in shots:
        if pieces and pieces[-1][1] - pieces[-1][0] < min_frames:
            pieces[-1] = (pieces[-1][0], end)
        else:
            pieces.append((begin, end))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < min_frames:
        last = pieces.pop()
        pieces[-1] = (pieces[-1][0], last[1])
    return pieces


class RangeSource(Source):
    """Frames [begin, end) of a video file, with the index and pts the whole-file source gives them.

    ``pts`` are those frames' pts from :func:`scan_shots`: the container is sought to the keyframe
    before the first one, and decoded frames are matched by pts. Audio is left out:
    the driver muxes the whole file's audio when it joins the pieces."""

    def __init__(self, path: str, begin: int, pts: list[int]) -> None:
        super().__init__()
        if begin < 0 or not pts:
            raise NStreamError(f"{path}: no frames asked for (begin {begin}, {len(pts)} frames)")
        self.inner = FileSource(path, keep_audio=False)
        self.inner.stop_event = self.stop_event
        self.begin, self.end = begin, begin + len(pts)
        self.wanted = {p: begin + i for i, p in enumerate(pts)}
        self.first_pts, self.last_pts = pts[0], max(pts)
        self.info = dataclasses.replace(self.inner.info, frame_count=len(pts), audio_stream=None)
        self.warnings = self.inner.warnings

    def frames(self) -> Iterator[Frame]:
        inner = self.inner
        if self.begin and not inner.index_timing:
            inner.container.seek(self.first_pts, stream=inner.decoder.video)
        found = 0
        for frame in inner.frames():
            if frame.pts is not None and frame.pts > self.last_pts:
                break
            index = self.wanted.get(frame.pts if frame.pts is not None else frame.index)
            if index is None:
                continue
            found += 1
            yield dataclasses.replace(frame, index=index, audio=[])
        if found != self.end - self.begin and not self.stop_event.is_set():
            raise NStreamError(f"{inner.path}: found {found} of frames [{self.begin}, {self.end}) after seeking; "
                               "the file may have changed since it was scanned")

    def close(self) -> None:
        self.inner.close()
