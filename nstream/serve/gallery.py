"""The styles the server offers, and a thumbnail of each: the same picture through every style.

The list comes from where ``python -m nstream styles`` takes it (the style registry, the bundled
paintings, the 26 styles), or from ``--style`` when the server is started with a fixed set. A
thumbnail is made by the server on first request, through the same session code as a job, and
cached under ``<data dir>/thumbs`` by style and model file date.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THUMB_SIZE = (192, 108)
REFERENCE_FRAME = 40  # of the demo clip: the bunny in a meadow


@dataclass(frozen=True)
class StyleChoice:
    """One offered style: ``id`` is what a job's ``style`` field names (and what ``-s`` takes)."""

    id: str
    name: str
    kind: str  # network, painting or tf26
    source: Path | None = None  # the file it comes from, for the thumbnail cache key

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "thumbnail": f"/api/styles/{self.id}/thumbnail"}


def display_name(spec: str, kind: str) -> str:
    """What the page shows: words, no file suffix or ``_lite`` (the same network family either way), and
    paintings marked as such (a painting and a trained network may share a name)."""
    from nstream.models.registry import LITE_SUFFIX

    words = Path(spec).stem.removesuffix(LITE_SUFFIX).replace("_", " ")
    return f"{words} (painting)" if kind == "painting" else words


def installed_styles() -> list[StyleChoice]:
    """Every installed style: trained networks (a name with a ``_lite`` sibling once: the session picks the
    network for the device), the bundled paintings, the 26 styles."""
    from nstream.models.registry import LITE_SUFFIX, list_styles
    from nstream.models.style_spec import PAINTINGS_DIR, PRETRAINED_DIR, bundled_paintings, tf26_names

    entries = list_styles()
    names = {entry.name for entry in entries}
    choices = [StyleChoice(entry.name, display_name(entry.name, "network"), "network", entry.path) for entry in entries
               if not (entry.name.endswith(LITE_SUFFIX) and entry.name.removesuffix(LITE_SUFFIX) in names)]
    if arbitrary_available():
        choices += [StyleChoice(name, display_name(name, "painting"), "painting", PAINTINGS_DIR / name)
                    for name in bundled_paintings()]
    tf26 = PRETRAINED_DIR / "tf26.safetensors"
    if tf26.is_file():
        choices += [StyleChoice(name, name, "tf26", tf26) for name in tf26_names()]
    return choices


def named_styles(specs: list[str]) -> list[StyleChoice]:
    """The styles ``--style`` named, each checked now so a typo stops the server at start."""
    from nstream.models.registry import resolve_style
    from nstream.models.style_spec import TF26_NAME, family_of, painting_path

    choices = []
    for spec in specs:
        family = family_of(spec)
        if family == "checkpoint":
            entry = resolve_style(spec)
            choices.append(StyleChoice(spec, display_name(spec, "network"), "network", entry.path))
        elif family == "tf26" and TF26_NAME.match(spec):
            choices.append(StyleChoice(spec, spec, "tf26"))
        else:
            from nstream.models.style_spec import read_painting

            read_painting(painting_path(spec))
            choices.append(StyleChoice(spec, display_name(spec, "painting"), "painting", Path(painting_path(spec))))
    return choices


def arbitrary_available() -> bool:
    """Whether Magenta's arbitrary-style network ships here (any painting is then a style)."""
    from nstream.models.style_spec import PRETRAINED_DIR

    return (PRETRAINED_DIR / "magenta_arbitrary.safetensors").is_file() or (PRETRAINED_DIR / "magenta_arbitrary.onnx").is_file()


class Gallery:
    """The offered styles, looked up by id, and their cached thumbnails."""

    def __init__(self, folder: Path, specs: list[str] | None = None) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.choices = named_styles(specs) if specs else installed_styles()
        self.by_id = {choice.id: choice for choice in self.choices}
        self.arbitrary = arbitrary_available()
        self.lock = threading.Lock()  # one thumbnail at a time: they share the CPU with the jobs

    def public(self) -> dict[str, Any]:
        return {"styles": [choice.public() for choice in self.choices], "style_image": self.arbitrary}

    def get(self, style_id: str) -> StyleChoice | None:
        return self.by_id.get(style_id)

    def reference(self) -> Path:
        """The picture every thumbnail shows: a frame of the bundled demo clip, made once."""
        path = self.folder / "reference.png"
        if not path.is_file():
            import av
            import cv2
            from PIL import Image

            from nstream.config import DEMO_CLIP

            with av.open(str(DEMO_CLIP)) as clip:
                for index, frame in enumerate(clip.decode(video=0)):
                    if index == REFERENCE_FRAME:
                        picture = frame.to_ndarray(format="rgb24")
                        break
            small = cv2.resize(picture, THUMB_SIZE, interpolation=cv2.INTER_AREA)
            Image.fromarray(small).save(path)
        return path

    def thumbnail(self, choice: StyleChoice) -> Path:
        """The style's thumbnail (made now if not cached): the reference picture through the style."""
        import nstream

        stamp = choice.source.stat().st_mtime_ns if choice.source is not None and choice.source.exists() else 0
        key = hashlib.sha256(f"{choice.id}\0{stamp}".encode()).hexdigest()[:24]
        path = self.folder / f"{key}.jpg"
        with self.lock:
            if not path.is_file():
                partial = self.folder / f"{key}.partial.jpg"
                nstream.stylize_video(str(self.reference()), str(partial), style=choice.id, temporal_strength=0)
                partial.replace(path)
        return path
