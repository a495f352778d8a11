"""The on-disk engine cache (``engines/`` in a checkout): build once, reuse while nothing changed.

An entry is a folder holding one artifact (an ONNX graph or a TensorRT plan) and ``meta.json``
with the full key and the artifact's SHA-256. A lookup trusts an entry only when its key matches
and the checksum verifies; anything else is discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger("nstream.engines")
REPO_ROOT = Path(__file__).resolve().parents[2]
META = "meta.json"


def default_cache_dir() -> Path:
    """``$NSTREAM_ENGINES``, else ``engines/`` of a source checkout, else ``~/.cache/nstream/engines``."""
    if os.environ.get("NSTREAM_ENGINES"):
        return Path(os.environ["NSTREAM_ENGINES"])
    if (REPO_ROOT / "setup.cfg").is_file() and (REPO_ROOT / "engines").is_dir():
        return REPO_ROOT / "engines"
    return Path.home() / ".cache" / "nstream" / "engines"


def model_hash(model: nn.Module) -> str:
    """SHA-256 of the architecture name and every weight, so retrained styles never share an entry."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(value.shape)}".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def device_tag(device: torch.device) -> str:
    """GPU name and compute capability (TensorRT plans do not move between GPUs); ``cpu`` otherwise."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return f"{torch.cuda.get_device_name(index)} sm{major}{minor}"
    return device.type


@dataclass(frozen=True)
class CacheKey:
    """Everything that changes the built artifact. ``extra`` holds e.g. the calibration set's hash."""

    backend: str
    model_hash: str
    precision: str
    shape_range: str
    backend_version: str
    device: str
    extra: str = ""

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def folder_name(self) -> str:
        return f"{self.backend}-{self.precision}-{self.digest()[:16]}"


class EngineCache:
    """Folder of entries keyed by :class:`CacheKey`; writes are atomic (temp folder + rename)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry(self, key: CacheKey) -> Path:
        return self.root / key.folder_name()

    def fetch(self, key: CacheKey, name: str) -> tuple[Path | None, str]:
        """(artifact path, status) where status is ``hit``, ``miss`` or ``corrupt: why`` (then removed)."""
        folder = self.entry(key)
        if not folder.exists():
            return None, "miss"
        problem = self._problem(folder, key, name)
        if problem is None:
            return folder / name, "hit"
        log.warning("engine cache entry %s is unusable (%s); rebuilding", folder, problem)
        self.discard(key)
        return None, f"corrupt: {problem}"

    def _problem(self, folder: Path, key: CacheKey, name: str) -> str | None:
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError) as exc:
            return f"unreadable {META} ({type(exc).__name__})"
        if not isinstance(meta, dict) or meta.get("key") != asdict(key):
            return "key mismatch"
        artifact = folder / name
        if not artifact.is_file():
            return f"{name} missing"
        if file_sha256(artifact) != meta.get("sha256"):
            return f"{name} checksum mismatch"
        return None

    def info(self, key: CacheKey) -> dict[str, Any]:
        """The metadata stored with an entry (PSNR of its check, build time...)."""
        try:
            return dict(json.loads((self.entry(key) / META).read_text()).get("info", {}))
        except (OSError, ValueError):
            return {}

    def commit(self, key: CacheKey, name: str, data: bytes, info: dict[str, Any] | None = None) -> Path:
        """Store an artifact that passed its checks; replaces any previous entry for the key."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            (tmp / name).write_bytes(data)
            meta = {"key": asdict(key), "sha256": hashlib.sha256(data).hexdigest(), "artifact": name, "info": info or {}}
            (tmp / META).write_text(json.dumps(meta, indent=2))
            self.discard(key)
            tmp.replace(self.entry(key))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.entry(key) / name

    def discard(self, key: CacheKey) -> None:
        shutil.rmtree(self.entry(key), ignore_errors=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
