"""The engine interface and what every backend shares at run time (the style input, warm-up).

An engine maps an NCHW float batch in 0..255 to an NCHW float batch of the same size (a NumPy
array in gives an array back, as the stylizer uses them; a torch tensor a tensor, as benchmarks
on a GPU do); the stylizer pads frames to a multiple of 4 before calling it. A conditioned
network (one network, many styles) also takes the (1, D) style vector: an input, never baked
into the engine, so switching and morphing styles needs no new engine. Backends differ only in
how fast. PyTorch is imported only where a function needs it: the light install's engine uses
this module too. Each is built with the ``reason`` it was chosen (shown on the dashboard) and releases
its sessions, contexts or weights in ``close()``, which is safe to call twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from nstream.devices import pick_device  # noqa: F401 - the engines' device picker lives in nstream.devices
from nstream.engines import ENGINES, PRECISIONS  # noqa: F401 - re-exported here for the engines
from nstream.errors import NStreamError

if TYPE_CHECKING:
    import numpy as np
    import torch


class Engine(Protocol):
    """What the stylizer and the dashboard rely on; ``reason`` says why this engine and precision were chosen."""

    name: str
    precision: str
    device: torch.device
    reason: str

    def infer(self, batch: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """NCHW in 0..255 to the same (a NumPy array in gives one back); ``style`` for conditioned networks."""

    def warmup(self, height: int, width: int) -> None:
        """Run once at the working size, so the first real frame pays no set-up cost."""

    def close(self) -> None:
        """Release sessions, contexts and weights; safe to call again. The engine cannot infer afterwards."""


def require_style(style: torch.Tensor | np.ndarray | None, dim: int) -> torch.Tensor:
    """A conditioned network's style input as (1, D) float; a missing or misshapen one is a bug upstream."""
    import torch

    if style is None:
        raise ValueError("this network is conditioned: infer() needs the style vector")
    style = torch.as_tensor(style, dtype=torch.float32).reshape(1, -1)
    if style.shape[1] != dim:
        raise ValueError(f"style vector of {style.shape[1]} numbers for a network that takes {dim}")
    return style


def warmup_style(engine: Engine) -> torch.Tensor | None:
    """Any valid style input for a warm-up call (zeros of the right length), None for one-style networks."""
    import torch

    dim = getattr(engine, "style_dim", None)
    return None if dim is None else torch.zeros(1, dim)


def require_open(handle: Any, name: str) -> Any:
    """``handle`` (a session, a context, a model) unless ``close()`` released it: running a closed engine is a bug."""
    if handle is None:
        raise NStreamError(f"the {name} engine was closed; build a new one")
    return handle
