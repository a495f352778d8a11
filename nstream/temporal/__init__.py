"""Temporal consistency: optical flow, warping, occlusion masks, blending, scene cuts, metrics.

One module per concept, so the live blender and the offline Gatys–Ruder optimizer share the
same flow, warp and mask code:

- :mod:`.flow`: ``create_flow(name, **options)`` -> a callable ``flow(a, b)`` (DIS, Farneback, RAFT).
- :mod:`.warp`: ``warp(image, flow)`` backward warping.
- :mod:`.occlusion`: ``reliability_mask(forward, backward)`` (Ruder et al. 2016 checks).
"""

from nstream.temporal.flow import FLOWS, FlowBackend, create_flow
from nstream.temporal.occlusion import reliability_mask
from nstream.temporal.warp import warp

__all__ = ["FLOWS", "FlowBackend", "create_flow", "reliability_mask", "warp"]
