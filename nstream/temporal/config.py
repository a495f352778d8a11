"""The temporal stage's settings as one typed object, validated in one place.

The command lines map their options onto :class:`TemporalConfig`; a Python caller, the web server or
a cluster worker builds one directly. :func:`build_temporal_stage` turns it into the pipeline stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nstream.errors import NStreamError
from nstream.stats import TEMPORAL
from nstream.temporal.blend import CHECKS, DEFAULT_CHECK, DEFAULT_STRENGTH, check_strength
from nstream.temporal.flow import BLEND_PRESET, DIS_PRESETS, FLOWS, FlowBackend, create_flow
from nstream.temporal.scenecut import DEFAULT_CUT_THRESHOLD


@dataclass
class TemporalConfig:
    """Flow-guided blending against flicker; ``strength`` 0 turns it off.

    ``flow_scale`` None: the flow's own default size; ``mask_smoothing`` None: frame height / 240;
    ``scene_cut`` None: never reset the history on a histogram jump."""

    strength: float = DEFAULT_STRENGTH
    flow: str = "dis"
    flow_scale: float | None = None
    flow_preset: str = BLEND_PRESET
    occlusion_check: str = DEFAULT_CHECK
    restore_contrast: bool = True
    refine_moving: bool = True  # full-size flow in the boxes around moving subjects (people get blended)
    still_scene: bool = True  # a still camera: flow and warp only around what moves (temporal/still.py)
    mask_smoothing: float | None = None
    scene_cut: float | None = DEFAULT_CUT_THRESHOLD

    def validate(self) -> TemporalConfig:
        """Raise one user-facing error for the first setting out of range; return self."""
        check_strength(self.strength)
        if self.flow not in FLOWS:
            raise NStreamError(f"unknown flow {self.flow!r}: use one of {', '.join(FLOWS)}")
        if self.flow_preset not in DIS_PRESETS:
            raise NStreamError(f"unknown flow preset {self.flow_preset!r}: use one of {', '.join(DIS_PRESETS)}")
        if self.occlusion_check not in CHECKS:
            raise NStreamError(f"unknown occlusion check {self.occlusion_check!r}: use one of {', '.join(CHECKS)}")
        if self.scene_cut is not None and not 0 < self.scene_cut <= 1:
            raise NStreamError(f"--scene-cut {self.scene_cut} is out of range: use 0 < T <= 1, or --no-scene-cuts")
        if self.mask_smoothing is not None and not 0 <= self.mask_smoothing <= 50:
            raise NStreamError(f"--mask-smoothing {self.mask_smoothing} is out of range: use 0 to 50 pixels")
        return self

    def create_flow(self, device: str = "cpu") -> FlowBackend:
        """The blending flow backend these settings ask for (RAFT on the network's CUDA device)."""
        options: dict[str, Any] = {}
        if self.flow_scale is not None:
            options["scale"] = self.flow_scale
        if self.flow in ("dis", "vectors"):
            options["preset"] = self.flow_preset
        elif self.flow.startswith("raft"):
            options["device"] = device if str(device).startswith("cuda") else "cuda"
        return create_flow(self.flow, **options)


def build_temporal_stage(config: TemporalConfig, live: bool, stats: Any = None, device: str = "cpu") -> Any:
    """The temporal stage, or None when ``strength`` is 0 (``stats.info`` then says it is off)."""
    from nstream.temporal.stream import TemporalStage

    config.validate()
    if config.strength == 0:
        if stats is not None:
            stats.info[TEMPORAL] = "off"
        return None
    return TemporalStage(config.create_flow(device), config.strength, live=live, cut_threshold=config.scene_cut,
                         smoothing=config.mask_smoothing, stats=stats, check=config.occlusion_check,
                         contrast=config.restore_contrast, refine=config.refine_moving,
                         still_scene=config.still_scene)
