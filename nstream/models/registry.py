"""The style registry: bundled styles plus the user's own.

A style is a checkpoint file. ``--style`` takes a name (looked up in the user's style folder,
then among the bundled ones) or a path. The user folder is ``$NSTREAM_STYLES`` or
``~/.local/share/nstream/styles``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nstream.errors import NStreamError

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "styles"
DEFAULT_STYLE = "the_scream"  # its lite network: within issue 16's fidelity goals at plain lite speed
SUFFIXES = (".pth", ".pt", ".model", ".safetensors")


def user_dir() -> Path:
    return Path(os.environ.get("NSTREAM_STYLES", Path.home() / ".local" / "share" / "nstream" / "styles"))


@dataclass(frozen=True)
class StyleEntry:
    name: str
    path: Path
    origin: str  # bundled or user


def list_styles() -> list[StyleEntry]:
    """Every known style; a user style shadows a bundled one of the same name."""
    found: dict[str, StyleEntry] = {}
    for origin, folder in (("bundled", BUNDLED_DIR), ("user", user_dir())):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in SUFFIXES and ".state" not in path.suffixes:
                    found[path.stem] = StyleEntry(path.stem, path, origin)
    return sorted(found.values(), key=lambda entry: entry.name)


LITE_SUFFIX, JOHNSON_SUFFIX = "_lite", "_johnson"
COMPACT_SUFFIX = "_compact"  # the teacher's own layout for one painting (models/conditioned.py): ``-s <name>_compact``
SHIPPED_GRAPH_ARCHS = {LITE_SUFFIX: "lite", COMPACT_SUFFIX: "compact"}  # bundled networks the light install runs


def shipped_arch(name: str) -> str | None:
    """The architecture of a bundled network the light install runs from its ONNX graph, by its name's suffix."""
    return next((arch for suffix, arch in SHIPPED_GRAPH_ARCHS.items() if name.endswith(suffix)), None)


def resolve_style(spec: str, prefer_lite: bool = False) -> StyleEntry:
    """A style name or a checkpoint path, as given to ``--style``.

    ``prefer_lite`` (a CPU): a bare name with a ``<name>_lite`` sibling means that one, since the
    johnson network is a few frames per second on a CPU; ``<name>_johnson`` always means the
    johnson network and ``<name>_lite`` the lite one, on any device; a bare name with only a lite
    network means that one on any device.
    """
    path = Path(spec).expanduser()
    if path.suffix in SUFFIXES or os.sep in spec:
        if not path.is_file():
            raise NStreamError(f"style model not found: {spec}")
        return StyleEntry(path.stem, path, "path")
    styles = {entry.name: entry for entry in list_styles()}
    if spec.endswith(JOHNSON_SUFFIX) and spec not in styles and spec.removesuffix(JOHNSON_SUFFIX) in styles:
        return styles[spec.removesuffix(JOHNSON_SUFFIX)]
    if spec + LITE_SUFFIX in styles and (prefer_lite or spec not in styles):  # or the only network of that name
        return styles[spec + LITE_SUFFIX]
    if spec not in styles:
        known = ", ".join(styles) or "none installed"
        raise NStreamError(f"unknown style {spec!r}: known styles are {known} (or give a .pth path)")
    return styles[spec]
