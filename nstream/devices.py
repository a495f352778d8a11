"""The one device picker: what ``--device`` means for every command (stream, offline, train, engines).

PyTorch is imported only when a device is picked, so the light install can import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nstream.errors import NStreamError

if TYPE_CHECKING:
    import torch

DEVICE_HINT = "use auto, cpu, cuda or cuda:N"


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` is the GPU when PyTorch sees one; a CUDA request without one, or an unknown name, is a user error.

    A ``torch.device`` passes through: it was picked already.
    """
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NStreamError(f"unknown --device {name!r}: {DEVICE_HINT}") from None
    if device.type not in ("cpu", "cuda"):
        raise NStreamError(f"unsupported --device {name!r}: {DEVICE_HINT}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NStreamError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    return device
