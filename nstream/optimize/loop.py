"""The optimization loop: L-BFGS (Gatys' choice, best per iteration) or Adam (cheaper steps).

One iteration is one loss-and-gradient evaluation for both, so iteration counts compare.
L-BFGS runs without a line search (as the original neural-style does): each ``step`` with
``max_iter=1`` costs exactly one closure call and keeps its curvature history between steps,
which is what lets us report progress and stop early between iterations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from nstream.errors import NStreamError

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_ADAM_LR = 0.02  # pixel units in [0, 1]
EARLY_STOP_WINDOW = 10

LossFn = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
StepFn = Callable[[int, dict[str, float]], None]


@dataclass
class OptimizeResult:
    """The best image seen, its loss terms and how the run ended."""

    image: torch.Tensor
    iterations: int
    terms: dict[str, float]
    first_terms: dict[str, float]
    stopped: str  # "iterations", "converged" or "diverged"
    seconds: float
    history: list[float] = field(default_factory=list)


def converged(history: list[float], tolerance: float, window: int = EARLY_STOP_WINDOW) -> bool:
    """True when the loss fell by less than ``tolerance`` (relative, per iteration) over the last window."""
    if tolerance <= 0 or len(history) <= window:
        return False
    before, now = history[-window - 1], history[-1]
    return (before - now) / max(abs(before), 1e-12) / window < tolerance


def optimize(x0: torch.Tensor, loss_fn: LossFn, iterations: int, method: str = "lbfgs", lr: float | None = None,
             tolerance: float = 0.0, on_step: StepFn | None = None) -> OptimizeResult:
    """Minimize ``loss_fn`` over the pixels of ``x0`` for up to ``iterations`` evaluations."""
    if method not in OPTIMIZERS:
        raise NStreamError(f"unknown optimizer {method!r}: use one of {', '.join(OPTIMIZERS)}")
    x = x0.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if method == "lbfgs":
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=lr or 1.0, max_iter=1, history_size=100, tolerance_grad=-1.0, tolerance_change=-1.0)
    else:
        optimizer = torch.optim.Adam([x], lr=lr or DEFAULT_ADAM_LR)
    history: list[float] = []
    best = (math.inf, x0.detach().clone(), {})
    first: dict[str, float] = {}
    stopped = "iterations"
    started = time.perf_counter()
    latest: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, terms = loss_fn(x)
        loss.backward()
        latest.clear()
        latest.update(terms)
        return loss

    for step in range(iterations):
        snapshot = x.detach().clone()  # the closure evaluates the loss here, before the step moves x
        optimizer.step(closure)
        loss = latest["total"]
        if not math.isfinite(loss):
            stopped = "diverged"
            break
        if not first:
            first = dict(latest)
        if loss < best[0]:
            best = (loss, snapshot, dict(latest))
        history.append(loss)
        if method == "adam":
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        if on_step is not None:
            on_step(step + 1, dict(latest))
        if converged(history, tolerance):
            stopped = "converged"
            break
    if stopped != "diverged" and history:
        with torch.no_grad():
            loss, terms = loss_fn(x)
        if float(loss) < best[0]:
            best = (float(loss), x.detach().clone(), terms)
    return OptimizeResult(image=best[1].clamp(0.0, 1.0), iterations=len(history), terms=best[2] or first,
                          first_terms=first, stopped=stopped, seconds=time.perf_counter() - started, history=history)
