"""The work folder of a video render: every finished frame, flow and mask on disk.

``<output>.work/`` holds:

- ``content/000000.png ...``: the input frames at the working size, decoded once;
- ``flow/000003-000002.npz``: flow from frame 3 to frame 2 and the reliability mask over frame 3,
  computed once per frame pair (both directions at once) and reused by later frames, passes and
  resumed runs; the loss closure only ever sees the finished tensors;
- ``pass1/000000.png ...``: each pass's finished frames (the last pass is the result);
- ``settings.json``: what the frames were made with, so a resumed run never mixes settings;
- ``frames.jsonl``: time and losses per finished frame, for the closing summary.

Frames are written to a temporary name and renamed, so a stopped render leaves only whole frames,
and a rerun continues after the last one. Several workers may fill one folder with different
frames (shots): nothing here holds state beyond what is on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nstream.errors import NStreamError
from nstream.optimize.transfer import resize
from nstream.temporal.occlusion import RUDER, Tolerances, reliability_mask

CONTENT = "content"
FLOW = "flow"


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB uint8 PNG atomically (temporary name, then rename): never a half-written frame."""
    partial = path.with_name(f".{path.stem}.partial.png")
    if not cv2.imwrite(str(partial), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise NStreamError(f"cannot write {partial}: is the disk full or the folder read-only?")
    os.replace(partial, path)


def read_png(path: Path) -> np.ndarray:
    """Read an RGB uint8 PNG written by :func:`write_png`."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise NStreamError(f"cannot read {path}: the work folder is damaged; rerun with --no-resume")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def frame_name(index: int) -> str:
    return f"{index:06d}.png"


# Settings that shape only the frames of passes 2, 3, ...
LATER_PASS_KEYS = frozenset({"pass_iters", "pass_blend"})


class WorkFolder:
    """The on-disk state of one render: content frames, flows and masks, finished frames."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- settings and resume ------------------------------------------------------------------
    def prepare(self, settings: dict[str, Any], resume: bool) -> None:
        """Create the folder; on resume insist the stored settings match, else start over cleanly.

        Settings that only shape passes after the first (``LATER_PASS_KEYS``) may change while no
        such frame exists yet: a finished one-pass render can go on with more passes.
        """
        path = self.root / "settings.json"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NStreamError(f"cannot create work folder {self.root} ({exc.strerror})") from None
        if path.exists() and resume:
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                stored = None
            free = LATER_PASS_KEYS if not self._later_passes_started() else frozenset()
            if not isinstance(stored, dict):
                changed = "unreadable settings"
            else:
                changed = next((k for k in sorted(set(stored) | set(settings))
                                if k not in free and stored.get(k) != settings.get(k)), None)
            if changed:
                raise NStreamError(f"work folder {self.root} holds frames made with other settings ({changed} differs): "
                                   "rerun with --no-resume to start over, or pick another --output")
            if stored == settings:
                return
        if not resume:
            self.clear(keep_content=path.exists())
        path.write_text(json.dumps(settings, indent=1, sort_keys=True))

    def _later_passes_started(self) -> bool:
        return any(next(folder.glob("*.png"), None) for folder in self.root.glob("pass*")
                   if folder.is_dir() and folder.name != "pass1")

    def clear(self, keep_content: bool) -> None:
        """Remove finished frames (and the frame log); content and flow survive if the input is the same."""
        for child in self.root.glob("pass*"):
            if child.is_dir():
                shutil.rmtree(child)
        for name in ("frames.jsonl", "settings.json"):
            (self.root / name).unlink(missing_ok=True)
        if not keep_content:
            for name in (CONTENT, FLOW):
                shutil.rmtree(self.root / name, ignore_errors=True)

    # -- content frames -----------------------------------------------------------------------
    def content_ready(self, source_key: dict[str, Any]) -> int | None:
        """Frame count if content/ already holds this input at this size."""
        meta = self.root / CONTENT / "meta.json"
        try:
            stored = json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
        return stored["frames"] if stored.get("source") == source_key else None

    def store_content(self, frames: Iterator[np.ndarray], source_key: dict[str, Any], width: int, height: int,
                      limit: int | None = None) -> int:
        """Resize and save every input frame; returns how many. Flows of another input go too."""
        folder = self.root / CONTENT
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(self.root / FLOW, ignore_errors=True)
        folder.mkdir(parents=True)
        count = 0
        for image in frames:
            write_png(folder / frame_name(count), resize(image, width, height))
            count += 1
            if limit is not None and count >= limit:
                break
        (folder / "meta.json").write_text(json.dumps({"source": source_key, "frames": count}))
        return count

    def count(self) -> int:
        """How many content frames are stored (0 before :meth:`store_content`)."""
        try:
            return int(json.loads((self.root / CONTENT / "meta.json").read_text())["frames"])
        except (OSError, ValueError, KeyError):
            return 0

    def content(self, index: int) -> np.ndarray:
        return read_png(self.root / CONTENT / frame_name(index))

    # -- finished frames ----------------------------------------------------------------------
    def frame_path(self, pass_index: int, index: int) -> Path:
        return self.root / f"pass{pass_index + 1}" / frame_name(index)

    def done(self, pass_index: int, index: int) -> bool:
        return self.frame_path(pass_index, index).exists()

    def log(self, record: dict[str, Any]) -> None:
        with open(self.root / "frames.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        path = self.root / "frames.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class FlowCache:
    """Flow and reliability mask per ordered frame pair, computed once (both directions) and kept on disk."""

    def __init__(self, work: WorkFolder, backend: Callable[[np.ndarray, np.ndarray], np.ndarray], name: str,
                 tolerances: Tolerances = RUDER) -> None:
        """``name`` identifies the flow and mask method: cached flows of another name are recomputed."""
        self.work = work
        self.backend = backend
        self.tolerances = tolerances
        self.folder = work.root / FLOW
        meta = self.folder / "meta.json"
        if self.folder.exists() and (not meta.exists() or meta.read_text() != name):
            shutil.rmtree(self.folder)  # flows of another method: recompute rather than mix
        self.folder.mkdir(parents=True, exist_ok=True)
        meta.write_text(name)
        self.computed = 0
        self.seconds = 0.0

    def path(self, a: int, b: int) -> Path:
        return self.folder / f"{a:06d}-{b:06d}.npz"

    def get(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(flow from frame a to frame b, mask over a): ``warp(out_b, flow)`` brings b's result into a."""
        path = self.path(a, b)
        if not path.exists():
            started = time.perf_counter()
            frame_a, frame_b = self.work.content(a), self.work.content(b)
            forward, backward = self.backend(frame_a, frame_b), self.backend(frame_b, frame_a)
            for (x, y), (f, g) in (((a, b), (forward, backward)), ((b, a), (backward, forward))):
                target = self.path(x, y)
                partial = target.with_name(f".{target.stem}.{os.getpid()}.partial.npz")  # workers may share a pair
                mask = reliability_mask(f, g, tolerances=self.tolerances)
                np.savez(partial, flow=f.astype(np.float32), mask=mask.astype(np.float32))
                os.replace(partial, target)
            self.computed += 1
            self.seconds += time.perf_counter() - started
        with np.load(path) as data:
            return data["flow"], data["mask"]
