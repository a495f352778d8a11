"""Style checkpoints: the project's own format, safetensors, and bare state dicts of other projects.

Our format is a plain dict (``format``, ``version``, ``arch``, ``state_dict``, ``meta``) of
tensors and primitives, stored in fp16 to keep bundled styles small in git. A ``.safetensors``
file carries the same weights with ``format``/``version``/``arch`` and the JSON ``meta`` in its
header. Pickles are read with ``torch.load(weights_only=True)`` and safetensors never unpickles:
a model file can never run code.

Bare state dicts (pytorch/examples ``fast_neural_style``, ports of Johnson's original with
transposed convolutions, a ``lite`` net saved by hand) are recognised by their keys and shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nstream.errors import NStreamError, first_line
from nstream.models.architectures import BUILDERS
from nstream.models.johnson import TransformerNetDeconv
from nstream.models.lite import LiteNet

FORMAT = "nstream-style"
VERSION = 1
SAFETENSORS_SUFFIX = ".safetensors"
# pytorch/examples saved InstanceNorm running stats that newer torch refuses to load.
_STALE_KEY = re.compile(r"\.running_(mean|var)$|\.num_batches_tracked$")
# deconv1/deconv2 of a transposed-convolution port, whatever the inner layer was called.
_UPSAMPLER_KEY = re.compile(r"^(deconv[12])\.(?:[A-Za-z_][A-Za-z0-9_]*\.)?(weight|bias)$")


def save_style(path: str | Path, model: nn.Module, arch: str, meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temp file + rename), weights in fp16; ``.safetensors`` by suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import save_file

        header = {"format": FORMAT, "version": str(VERSION), "arch": arch, "meta": json.dumps(meta)}
        save_file(state, str(tmp), metadata=header)
    else:
        payload = {"format": FORMAT, "version": VERSION, "arch": arch, "state_dict": state, "meta": meta}
        torch.save(payload, tmp)
    tmp.replace(path)
    return path


def detect_arch(state: dict[str, torch.Tensor]) -> str:
    """Which architecture a bare state dict belongs to, from its keys and weight shapes."""
    if "stem.weight" in state:
        return "lite"
    for key, value in state.items():
        match = _UPSAMPLER_KEY.match(key)
        if match and match.group(1) == "deconv1" and match.group(2) == "weight" and value.ndim == 4:
            # Conv2d weights are out x in (64 x 128); ConvTranspose2d weights are in x out (128 x 64).
            return "johnson_deconv" if value.shape[0] > value.shape[1] else "johnson"
    return "johnson"


def normalise_keys(arch: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transposed-convolution port's upsampler keys to ours (``deconvN.conv_transpose.*``)."""
    if arch != "johnson_deconv":
        return state
    renamed = {}
    for key, value in state.items():
        match = _UPSAMPLER_KEY.match(key)
        renamed[f"{match.group(1)}.conv_transpose.{match.group(2)}" if match else key] = value
    return renamed


def build_model(arch: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """An untrained network of ``arch`` shaped like ``state`` (kernel size, width)."""
    if arch == "johnson_deconv" and "deconv1.conv_transpose.weight" in state:
        return TransformerNetDeconv(kernel=int(state["deconv1.conv_transpose.weight"].shape[-1]))
    if arch in ("lite", "magenta_lite") and "stem.weight" in state:
        detail = state.get("detail.weight")
        head = state.get("out.weight") if detail is None else detail
        style = state.get("in1.gamma.weight")
        return LiteNet(channels=int(state["stem.weight"].shape[0]),
                       head_channels=int(head.shape[1]) - 3 if head is not None else 8,
                       style_dim=None if style is None else int(style.shape[1]),
                       detail_channels=0 if detail is None else int(detail.shape[0]))
    return BUILDERS[arch]()


def _read_safetensors(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as handle:
        header = dict(handle.metadata() or {})
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    return header, state


def read_checkpoint(path: str | Path) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    """Return (arch, fp32 state dict, metadata) for any supported file."""
    path = Path(path)
    if not path.is_file():
        raise NStreamError(f"style model not found: {path}")
    if path.suffix == SAFETENSORS_SUFFIX:
        try:
            header, state = _read_safetensors(path)
            meta = json.loads(header["meta"]) if "meta" in header else {}
        except Exception as exc:  # noqa: BLE001 - corrupt header or data: the user's file
            raise NStreamError(f"cannot load style model {path}: {first_line(exc)}") from None
        if header.get("format") == FORMAT:
            arch = header.get("arch", "")
        else:
            arch = detect_arch(state)
            meta = {"source": "safetensors state dict", **(meta if isinstance(meta, dict) else {})}
        if not isinstance(meta, dict):
            raise NStreamError(f"{path}: the 'meta' header entry is not a JSON object")
        return _finish(path, arch, state, meta)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable or unsafe pickle: the user's file
        raise NStreamError(f"cannot load style model {path}: {first_line(exc)}") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        arch, state, meta = payload["arch"], payload["state_dict"], dict(payload.get("meta", {}))
    elif isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        arch = detect_arch(payload)
        source = "pytorch/examples fast_neural_style" if arch == "johnson" else f"{arch} state dict"
        state, meta = payload, {"source": source}
    else:
        raise NStreamError(f"{path} is not a style model (neither nstream nor a style network's state dict)")
    return _finish(path, arch, state, meta)


def _finish(path: Path, arch: str, state: dict[str, torch.Tensor], meta: dict[str, Any]
            ) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    if arch not in BUILDERS:
        raise NStreamError(f"{path}: unknown architecture {arch!r} (known: {', '.join(sorted(BUILDERS))})")
    state = {k: v.float() for k, v in state.items() if not _STALE_KEY.search(k)}
    return arch, normalise_keys(arch, state), meta


def load_style_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Build the network a checkpoint describes, in eval mode, with its metadata."""
    arch, state, meta = read_checkpoint(path)
    model = build_model(arch, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NStreamError(f"{path}: weights do not fit the {arch} network ({first_line(exc)})") from None
    meta.setdefault("arch", arch)
    return model.eval(), meta
