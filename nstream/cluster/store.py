"""Finished frames as files in a shared work folder: written by workers, played back by the driver.

Each frame is a PNG named by its index in the whole file (lossless, so the joined output is the
frames the workers made), written under a temporary name and renamed: a worker killed mid-write
leaves no half frame. ``pieces/B-E.done`` marks a piece whose every frame is there.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nstream.errors import NStreamError
from nstream.frames import Frame, SourceInfo
from nstream.media.sinks import Sink

PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # a fifth of level 3's time for 10-20 % more bytes


def frame_path(folder: Path, index: int) -> Path:
    return folder / f"{index:06d}.png"


def write_frame(folder: Path, index: int, image: np.ndarray) -> None:
    """Write an RGB frame atomically (temporary name, then rename)."""
    path = frame_path(folder, index)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.png")
    if not cv2.imwrite(str(partial), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), PNG_FAST):
        raise NStreamError(f"cannot write {partial}: is the disk full or the work folder read-only?")
    os.replace(partial, path)


def read_frame(folder: Path, index: int) -> np.ndarray:
    """An RGB frame written by :func:`write_frame`."""
    image = cv2.imread(str(frame_path(folder, index)), cv2.IMREAD_COLOR)
    if image is None:
        raise NStreamError(f"frame {index} is missing from {folder}: the work folder is damaged; delete it and rerun")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FrameFolderSink(Sink):
    """A sink that writes every frame it gets into ``folder`` as ``NNNNNN.png``."""

    name = "frames"

    def __init__(self, folder: Path, skip_below: int = 0) -> None:
        self.folder = Path(folder)
        self.skip_below = skip_below  # frames already there (a resumed piece's warm-up frame)

    def open(self, info: SourceInfo) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Frame) -> None:
        if frame.index >= self.skip_below:
            write_frame(self.folder, frame.index, frame.image)


class ResumeStage:
    """The network stage, except for one frame whose finished output is read back instead."""

    name = "network"
    ordered = False

    def __init__(self, network: Any, folder: Path, index: int) -> None:
        self.network, self.folder, self.index = network, Path(folder), index

    def prepare(self, frame: Frame) -> None:
        self.network.prepare(frame)

    def process(self, frame: Frame) -> Frame:
        if frame.index == self.index:
            frame.image = read_frame(self.folder, frame.index)
            return frame
        return self.network.process(frame)

    def close(self) -> None:
        self.network.close()


class StoredFramesStage:
    """A stage that swaps each decoded frame's pixels for the finished frame of the same index."""

    name = "stored frames"
    ordered = False

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def prepare(self, frame: Frame) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        frame.image = read_frame(self.folder, frame.index)
        return frame

    def close(self) -> None:
        pass


def settings_key(config: Any, path: str) -> str:
    """A short hash of the input file (path, size, mtime) and every setting that shapes the frames."""
    settings = asdict(config)
    settings.pop("outputs", None)
    settings.pop("queue_size", None)
    settings.get("engine", {}).pop("workers", None)
    stat = Path(path).stat()
    blob = json.dumps({"input": str(Path(path).resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                       "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def done_marker(folder: Path, begin: int, end: int) -> Path:
    return folder / "pieces" / f"{begin:06d}-{end:06d}.done"
