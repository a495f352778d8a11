"""Style checkpoints: the project's own format, and pytorch/examples state dicts.

Our format is a plain dict (``format``, ``version``, ``arch``, ``state_dict``, ``meta``) of
tensors and primitives, stored in fp16 to keep bundled styles small in git. Everything is read
with ``torch.load(weights_only=True)``: a model file can never run code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nstream.errors import NStreamError
from nstream.models.johnson import ARCHITECTURES

FORMAT = "nstream-style"
VERSION = 1
# pytorch/examples saved InstanceNorm running stats that newer torch refuses to load.
_STALE_KEY = re.compile(r"\.running_(mean|var)$|\.num_batches_tracked$")


def save_style(path: str | Path, model: nn.Module, arch: str, meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temp file + rename), weights in fp16."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "arch": arch, "state_dict": state, "meta": meta}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    """Return (arch, fp32 state dict, metadata) for our format or a pytorch/examples file."""
    path = Path(path)
    if not path.is_file():
        raise NStreamError(f"style model not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable or unsafe pickle: the user's file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NStreamError(f"cannot load style model {path}: {first[:200]}") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        arch, state, meta = payload["arch"], payload["state_dict"], dict(payload.get("meta", {}))
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        arch, state, meta = "johnson", payload, {"source": "pytorch/examples fast_neural_style"}
    else:
        raise NStreamError(f"{path} is not a style model (neither nstream nor pytorch/examples format)")
    if arch not in ARCHITECTURES:
        raise NStreamError(f"{path}: unknown architecture {arch!r}")
    state = {k: v.float() for k, v in state.items() if not _STALE_KEY.search(k)}
    return arch, state, meta


def load_style_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a checkpoint describes, in eval mode, with its metadata."""
    arch, state, meta = read_checkpoint(path)
    model = ARCHITECTURES[arch]()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NStreamError(f"{path}: weights do not fit the {arch} network ({str(exc).splitlines()[0]})") from None
    meta.setdefault("arch", arch)
    return model.eval(), meta
