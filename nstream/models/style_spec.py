"""What ``-s`` names: a checkpoint, a painting, one of the 26 styles, or a weighted blend.

- a style name or checkpoint path (``starry_night``, ``my.pth``): its own network, as before;
- any image file (``painting.jpg``): Magenta's arbitrary-style network with the painting's style
  vector, computed once by the style predictor and cached on disk by the image's sha256; a bare
  file name that is not in the current folder may name a bundled painting (``wave.jpg``);
- ``tf26-NN`` (00..25): one of the 26 styles of the multi-style network;
- a blend, ``a.jpg:0.7+b.jpg:0.3`` or ``tf26-03+tf26-12`` (weights default to 1 and are
  normalised): the weighted mean of the style vectors, one network pass, no pixel mixing.

Conditioned styles of one family share one network (and so one engine): switching or morphing
between them changes only the style vector the engine is given.

Without PyTorch (the light install) a style comes as its shipped ONNX graph instead of a network:
the bundled lite styles, Magenta's networks and the style predictor have one each
(engines/bundled.py); anything else needs ``nstream[torch]``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nstream.engines.graph_engine import TORCH_HINT, GraphEngine, torch_installed
from nstream.errors import NStreamError
from nstream.media.formats import STYLE_IMAGE_SUFFIXES
from nstream.models.registry import resolve_style, shipped_arch

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
PAINTINGS_DIR = Path(__file__).resolve().parent.parent / "paintings"  # public-domain paintings, shipped
TF26_COUNT = 26
TF26_NAME = re.compile(r"^tf26-(\d{1,2})$")
MIN_PAINTING_SIDE = 32
PREDICTOR_SIZE = 256  # the style predictor sees the central square at this size
FAMILY_NETWORK = {"magenta": "magenta_arbitrary", "tf26": "tf26"}
GRAPH_SUFFIX = ".onnx"
VECTOR_VERSION = 2  # in the cache's file names: bump when the predictor's input or weights change


@dataclass
class Style:
    """One ``-s`` choice, ready to stylize with: the network, and for conditioned ones the vector."""

    name: str
    family: str  # "checkpoint", "magenta" or "tf26"
    model: Any  # the torch network; None without PyTorch, where ``graph`` runs instead
    vector: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    painting: str | None = None  # the image file, when the style is one painting
    graph: Path | None = None  # the shipped ONNX graph (light install)

    @property
    def network_key(self) -> object:
        """Styles with the same key share one engine (conditioned styles of one family)."""
        return self.graph if self.model is None else id(self.model)


def tf26_names() -> list[str]:
    return [f"tf26-{i:02d}" for i in range(TF26_COUNT)]


@functools.cache
def pretrained(name: str) -> tuple[Any, dict[str, Any]]:
    """A bundled converted network (``magenta_arbitrary``, ``magenta_predictor``, ``tf26``), loaded once."""
    from nstream.models.checkpoints import load_style_model

    return load_style_model(PRETRAINED_DIR / f"{name}.safetensors")


def shipped_graph(checkpoint: Path) -> Path:
    """The ONNX graph shipped beside a checkpoint, for runs without PyTorch."""
    graph = checkpoint.with_suffix(GRAPH_SUFFIX)
    if not graph.is_file():
        raise NStreamError(f"{checkpoint.stem} needs PyTorch, which this install lacks: {TORCH_HINT} "
                           "(without it: the bundled *_lite and *_compact styles, paintings and tf26 styles)")
    return graph


@functools.cache
def _predictor_graph() -> GraphEngine:
    return GraphEngine(shipped_graph(PRETRAINED_DIR / "magenta_predictor.safetensors"))


def vector_cache_dir() -> Path:
    root = os.environ.get("NSTREAM_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "nstream" / "style_vectors"


def read_painting(path: str | Path) -> np.ndarray:
    from nstream.media.sources import read_image

    image = read_image(path, "style image")
    if min(image.shape[:2]) < MIN_PAINTING_SIDE:
        raise NStreamError(f"style image {path} is {image.shape[1]}x{image.shape[0]}: a painting needs at least "
                           f"{MIN_PAINTING_SIDE}x{MIN_PAINTING_SIDE} pixels")
    return image


def predictor_input(image: np.ndarray, size: int = PREDICTOR_SIZE) -> np.ndarray:
    """HxWx3 uint8 RGB to the predictor's 1x3xSxS float32 input: the central square, resized (area
    averaging when shrinking). NumPy and OpenCV only: the light install runs the predictor's ONNX graph."""
    import cv2

    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(image[top:top + side, left:left + side])
    if side != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return np.ascontiguousarray(square.transpose(2, 0, 1)[None], dtype=np.float32)


def predict_vector(image: np.ndarray) -> np.ndarray:
    """The 100-number style vector of an HxWx3 uint8 image (the predictor sees its central square):
    the PyTorch network where PyTorch is installed, its shipped ONNX graph elsewhere."""
    x = predictor_input(image)
    if not torch_installed():
        return _predictor_graph().infer(x).reshape(-1).astype(np.float32)
    import torch

    predictor, _ = pretrained("magenta_predictor")
    with torch.inference_mode():
        return predictor(torch.from_numpy(x)).numpy()[0].astype(np.float32)


def painting_vector(path: str | Path) -> np.ndarray:
    """The painting's style vector, from the on-disk cache when this exact file was seen before."""
    file = Path(path)
    if not file.is_file():
        raise NStreamError(f"style image not found: {path}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    cached = vector_cache_dir() / f"{digest}-v{VECTOR_VERSION}.npy"
    if cached.is_file():
        try:
            vector = np.load(cached)
            if vector.shape == (100,):
                return vector.astype(np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed and replaced
    vector = predict_vector(read_painting(file))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, vector)
        tmp.replace(cached)
    except OSError:
        pass  # a read-only cache only costs the recomputation next time
    return vector


def split_blend(spec: str) -> list[tuple[str, float]]:
    """``a:0.7+b:0.3`` into [(a, 0.7), (b, 0.3)]; a part without ``:weight`` weighs 1."""
    parts = []
    for part in spec.split("+"):
        name, weight = part.strip(), 1.0
        head, sep, tail = name.rpartition(":")
        if sep and head:
            try:
                weight = float(tail)
            except ValueError:
                pass  # a colon that belongs to the name
            else:
                name = head
        if not name:
            raise NStreamError(f"style {spec!r}: an empty part in the blend (use e.g. 'a.jpg:0.7+b.jpg:0.3')")
        if not weight >= 0:
            raise NStreamError(f"style {spec!r}: blend weights must be 0 or more, not {weight}")
        parts.append((name, weight))
    if sum(weight for _, weight in parts) <= 0:
        raise NStreamError(f"style {spec!r}: the blend weights add up to zero")
    return parts


def family_of(part: str) -> str:
    if TF26_NAME.match(part):
        return "tf26"
    if Path(part).suffix.lower() in STYLE_IMAGE_SUFFIXES:
        return "magenta"
    return "checkpoint"


def painting_path(part: str) -> str:
    """The painting file ``part`` names: the file itself, or else a bundled painting of that file name."""
    bundled = PAINTINGS_DIR / part
    if not Path(part).exists() and Path(part).name == part and bundled.is_file():
        return str(bundled)
    return part


def bundled_paintings() -> list[str]:
    return sorted(path.name for path in PAINTINGS_DIR.glob("*.jpg"))


def part_vector(part: str, family: str) -> np.ndarray:
    if family == "tf26":
        index = int(TF26_NAME.match(part).group(1))
        if index >= TF26_COUNT:
            raise NStreamError(f"unknown style {part!r}: the 26 styles are tf26-00 to tf26-{TF26_COUNT - 1}")
        return np.eye(TF26_COUNT, dtype=np.float32)[index]
    return painting_vector(painting_path(part))


def style_name(parts: list[tuple[str, float]]) -> str:
    """A short name for outputs and the dashboard: file stems, with weights for a blend."""
    names = [Path(part).stem if family_of(part) == "magenta" else part for part, _ in parts]
    if len(parts) == 1:
        return names[0]
    total = sum(weight for _, weight in parts)
    return "+".join(f"{name}{weight / total:.2g}".replace("0.", ".") for name, (_, weight) in zip(names, parts, strict=True))


@functools.cache
def painting_network(path: str) -> tuple[Any, dict[str, Any]]:
    """A conditioned lite on Magenta's style vectors (``nstream distill --styles``), loaded once, so
    every painting of a run shares it (and its engine)."""
    from nstream.models.checkpoints import load_style_model

    if not Path(path).is_file():
        raise NStreamError(f"painting network not found: {path}")
    model, meta = load_style_model(path)
    if meta.get("arch") != "magenta_lite":
        raise NStreamError(f"{path} is a {meta.get('arch')} network: --painting-network takes a conditioned lite "
                           "made by 'nstream distill --styles'")
    return model, meta


def load_style(spec: str, prefer_lite: bool = False, light: bool = False, painter: str | None = None) -> Style:
    """Everything ``-s SPEC`` needs to stylize (see the module docstring); ``prefer_lite``: on a CPU a
    bare trained-style name means its ``lite`` network (models/registry.py); ``light``: no PyTorch,
    the style's shipped ONNX graph instead of its network; ``painter``: a ``magenta_lite`` checkpoint
    that paints image styles instead of Magenta's arbitrary network (:func:`painting_network`)."""
    parts = split_blend(spec)
    families = {family_of(part) for part, _ in parts}
    if len(families) > 1:
        raise NStreamError(f"style {spec!r} mixes kinds: blend paintings with paintings, tf26 styles with tf26 styles")
    family = families.pop()
    if family == "checkpoint":
        if len(parts) > 1:
            raise NStreamError(f"style {spec!r}: trained checkpoints do not blend; blend paintings or tf26-NN styles")
        entry = resolve_style(parts[0][0], prefer_lite)
        if light:
            return Style(entry.name, family, None, None, {"arch": shipped_arch(entry.name) or "lite"},
                         graph=shipped_graph(entry.path))
        from nstream.models.checkpoints import load_style_model

        model, meta = load_style_model(entry.path)
        if getattr(model, "style_dim", None) is not None:
            raise NStreamError(f"{entry.path} is a network of many styles ({meta.get('arch')}): give a painting "
                               "(an image file) or a tf26-NN style instead")
        return Style(entry.name, family, model, None, meta)
    total = sum(weight for _, weight in parts)
    vector = np.asarray(sum(weight / total * part_vector(part, family) for part, weight in parts), dtype=np.float32)
    painting = painting_path(parts[0][0]) if family == "magenta" and len(parts) == 1 else None
    painted_by = painter if family == "magenta" and painter else None
    checkpoint = Path(painted_by) if painted_by else PRETRAINED_DIR / f"{FAMILY_NETWORK[family]}.safetensors"
    if light:
        return Style(style_name(parts), family, None, vector, {"arch": family}, painting, shipped_graph(checkpoint))
    model, meta = painting_network(painted_by) if painted_by else pretrained(FAMILY_NETWORK[family])
    return Style(style_name(parts), family, model, vector, meta, painting)
