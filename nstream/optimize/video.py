"""Video the Ruder et al. (2016) way, with every finished frame on disk.

The work folder (``<output>.work/``) holds:

- ``content/000000.png ...``: the input frames at the working size, decoded once;
- ``flow/000003-000002.npz``: flow from frame 3 to frame 2 and the reliability mask over frame 3,
  computed once per frame pair (both directions at once) and reused by later frames, passes and
  resumed runs; the loss closure only ever sees the finished tensors;
- ``pass1/000000.png ...``: each pass's finished frames (the last pass is the result);
- ``settings.json``: what the frames were made with, so a resumed run never mixes settings;
- ``frames.jsonl``: time and losses per finished frame, for the closing summary.

Frames are written to a temporary name and renamed, so a stopped render leaves only whole frames,
and a rerun continues after the last one.

Ruder's recipe, as implemented here:

- start image: the previous result warped by the flow (``prev-warped``); where the mask says
  the warp cannot be trusted (disocclusions, motion boundaries) the content frame fills in;
- temporal loss: per-pixel masked squared distance to the warped earlier results, over the
  frames ``long_term`` back (default 1; ``1,2,4`` for long-term consistency), weighted so a pixel
  counts only for the closest frame where it is visible (:func:`~.losses.long_term_weights`);
- multi-pass: later passes run backward, forward, ... over the sequence; each frame starts from
  the blend ``d*c*warp(neighbour) + (1 - d + d*(1 - c))*own previous result`` (Ruder eq. 10,
  d = ``pass_blend``) with the temporal loss towards the frames already done in this pass.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nstream.errors import NStreamError
from nstream.optimize.losses import long_term_weights
from nstream.optimize.transfer import Temporal, Transfer, resize
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
                partial = target.with_name(f".{target.stem}.partial.npz")
                mask = reliability_mask(f, g, tolerances=self.tolerances)
                np.savez(partial, flow=f.astype(np.float32), mask=mask.astype(np.float32))
                os.replace(partial, target)
            self.computed += 1
            self.seconds += time.perf_counter() - started
        with np.load(path) as data:
            return data["flow"], data["mask"]


@dataclass
class VideoSettings:
    """The Ruder-specific choices; the per-frame optimization lives in the Transfer."""

    iterations_first: int = 500
    iterations_rest: int = 250
    init: str = "prev-warped"
    start_from_prev: bool = False
    style_from_prev: bool = False
    temporal: bool = True
    long_term: Sequence[int] = (1,)
    passes: int = 1
    pass_iterations: int = 100
    pass_blend: float = 0.5
    max_frames: int | None = None  # frames to finish in this run, then stop (resume later)


@dataclass
class FrameReport:
    """What one finished frame cost and where its losses ended."""

    pass_index: int
    index: int
    iterations: int
    seconds: float
    terms: dict[str, float]
    first_terms: dict[str, float]
    stopped: str
    flow_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Hooks:
    """What the renderer tells its view: frame skipped (resumed), frame started, step, frame done."""

    def resumed(self, count: int) -> None: ...

    def pass_started(self, pass_index: int, passes: int, todo: int, total: int) -> None: ...

    def frame_started(self, pass_index: int, index: int, iterations: int) -> None: ...

    def step(self, iteration: int, terms: dict[str, float]) -> None: ...

    def frame_done(self, report: FrameReport) -> None: ...


def render_video(work: WorkFolder, count: int, transfer: Transfer, flows: FlowCache | None, settings: VideoSettings,
                 hooks: Hooks) -> tuple[list[FrameReport], bool]:
    """Stylize frames 0..count-1 over all passes, skipping finished ones; returns (reports, complete)."""
    reports: list[FrameReport] = []
    outputs: dict[tuple[int, int], np.ndarray] = {}
    budget = settings.max_frames

    def result(pass_index: int, index: int) -> np.ndarray:
        key = (pass_index, index)
        if key not in outputs:
            outputs[key] = read_png(work.frame_path(pass_index, index))
        return outputs[key]

    total_done = sum(work.done(p, i) for p in range(settings.passes) for i in range(count))
    if total_done:
        hooks.resumed(total_done)
    for pass_index in range(settings.passes):
        (work.root / f"pass{pass_index + 1}").mkdir(parents=True, exist_ok=True)
        backward = pass_index % 2 == 1
        order = list(range(count - 1, -1, -1)) if backward else list(range(count))
        step = 1 if backward else -1  # the neighbours already done in this pass lie at index + step * j
        todo = [i for i in order if not work.done(pass_index, i)]
        hooks.pass_started(pass_index, settings.passes, len(todo), count)
        for index in order:
            if work.done(pass_index, index):
                continue
            if budget is not None and budget <= 0:
                return reports, False
            content = work.content(index)
            flow_before = flows.seconds if flows else 0.0
            start, temporal, iterations = _plan(work, index, step, pass_index, count, content, transfer, flows, settings,
                                                result)
            extra_style = None
            neighbour = index + step
            if settings.style_from_prev and 0 <= neighbour < count and work.done(pass_index, neighbour):
                extra_style = result(pass_index, neighbour)
            flow_seconds = (flows.seconds if flows else 0.0) - flow_before
            hooks.frame_started(pass_index, index, iterations)
            started = time.perf_counter()
            image, run = transfer.stylize(content, start, iterations, temporal, extra_style, on_step=hooks.step)
            write_png(work.frame_path(pass_index, index), image)
            outputs[(pass_index, index)] = image
            report = FrameReport(pass_index, index, run.iterations, time.perf_counter() - started, run.terms, run.first_terms,
                                 run.stopped, flow_seconds)
            work.log({"pass": pass_index, "index": index, "iterations": run.iterations, "seconds": report.seconds,
                      "flow_seconds": flow_seconds, "terms": run.terms, "first_terms": run.first_terms, "stopped": run.stopped})
            reports.append(report)
            hooks.frame_done(report)
            if budget is not None:
                budget -= 1
            reach = max(settings.long_term)
            for key in [k for k in outputs if k[0] != pass_index or abs(k[1] - index) > reach]:  # bounded memory
                del outputs[key]
    return reports, True


def _plan(work: WorkFolder, index: int, step: int, pass_index: int, count: int, content: np.ndarray, transfer: Transfer,
          flows: FlowCache | None, settings: VideoSettings,
          result: Callable[[int, int], np.ndarray]) -> tuple[np.ndarray, list[Temporal], int]:
    """Start image, temporal targets and iteration count for one frame of one pass."""
    neighbours = [index + step * j for j in settings.long_term if 0 <= index + step * j < count]
    warped: list[tuple[np.ndarray, np.ndarray]] = []  # (warped earlier result float [0, 1], mask), closest first
    if flows is not None and (settings.temporal or settings.init == "prev-warped" or pass_index > 0):
        from nstream.temporal import warp

        for other in neighbours if settings.temporal else neighbours[:1]:
            flow, mask = flows.get(index, other)
            warped.append((warp(result(pass_index, other).astype(np.float32) / 255.0, flow), mask))
    temporal = []
    if settings.temporal and warped:
        weights = long_term_weights([mask for _, mask in warped])
        temporal = [Temporal(image, weight) for (image, _), weight in zip(warped, weights, strict=True)]
    closest = warped[0] if warped and neighbours and neighbours[0] == index + step else None
    if pass_index > 0:
        own = result(pass_index - 1, index).astype(np.float32) / 255.0
        if closest is None:
            return own, temporal, settings.pass_iterations
        image, mask = closest
        d = settings.pass_blend * mask[..., None]
        return d * image + (1.0 - d) * own, temporal, settings.pass_iterations
    if not neighbours or index + step not in neighbours:
        return transfer.start_image(content, "random" if settings.init == "random" else "content"), temporal, \
            settings.iterations_first
    if settings.start_from_prev:
        return result(pass_index, index + step).astype(np.float32) / 255.0, temporal, settings.iterations_rest
    if settings.init == "prev-warped" and closest is not None:
        image, mask = closest
        m = mask[..., None]
        return m * image + (1.0 - m) * content.astype(np.float32) / 255.0, temporal, settings.iterations_rest
    return transfer.start_image(content, settings.init), temporal, settings.iterations_rest
