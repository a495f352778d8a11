"""Temporal consistency on synthetic sequences with known motion: flow, warp, occlusion mask,
blending (and its guards), scene cuts, the warping-error metric; one real stream.py run."""

from __future__ import annotations

import json
import os
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import SHARED, assert_one_line_error, make_clip, probe, run_stream
from nstream.errors import NStreamError
from nstream.frames import Frame
from nstream.temporal import create_flow, reliability_mask, warp
from nstream.temporal.blend import CHECKS, DEFAULT_STRENGTH, MAX_STRENGTH, check_strength
from nstream.temporal.flow import FlowBackend
from nstream.temporal.metrics import measure_pairs, warping_error
from nstream.temporal.scenecut import SceneCutDetector
from nstream.temporal.still import StillCamera
from nstream.temporal.stream import TemporalStage

INNER = (slice(12, -12), slice(12, -12))  # away from the borders, where flow has nothing to match


def texture(height: int = 200, width: int = 300, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur((rng.random((height, width, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX)


TEX = texture()


def shifted(dx: float, dy: float = 0.0, size: tuple[int, int] = (160, 96)) -> np.ndarray:
    """The texture seen through a window moved by (dx, dy): content moves by (-dx, -dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    view = cv2.warpAffine(TEX, m, (TEX.shape[1], TEX.shape[0]), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
    return view[40:40 + size[1], 40:40 + size[0]]


PATCH = cv2.normalize(cv2.GaussianBlur((np.random.default_rng(7).random((32, 32, 3)) * 255).astype(np.uint8), (0, 0), 3),
                      None, 0, 127, cv2.NORM_MINMAX) + np.array([128, 0, 0], np.uint8)


def object_frame(x: int, background: np.ndarray) -> np.ndarray:
    """A reddish textured 32-pixel square (its texture moves with it) at column x over a still background."""
    frame = background.copy()
    frame[30:62, x:x + 32] = PATCH
    return frame


def frame(image: np.ndarray, index: int) -> Frame:
    return Frame(image, index, index, Fraction(1, 25), time.monotonic())


def invert(f: Frame) -> Frame:
    """A steady pointwise 'stylization': the same input pixel always gives the same output."""
    f.image = 255 - f.image
    return f


class Blended:
    """A stylize callable (the network stage) then the temporal stage, as the pipeline runs them for one
    frame: prepared, stylized, blended. Attributes not its own are the temporal stage's."""

    def __init__(self, stylize, flow: FlowBackend, **options) -> None:
        self.stylize = stylize
        self.stage = TemporalStage(flow, **options)

    def __call__(self, f: Frame) -> Frame:
        self.stage.prepare(f)
        return self.stage.process(self.stylize(f))

    def __getattr__(self, name: str):
        return getattr(self.stage, name)


def run_sequence(stylizer: Blended, images: list[np.ndarray]) -> list[np.ndarray]:
    return [stylizer(frame(image, i)).image for i, image in enumerate(images)]


# -- flow and warp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_flow_of_a_known_shift_and_warp_aligns(name):
    a, b = shifted(0, 0), shifted(3, -2)  # b's content is a's moved by (-3, +2)
    flow = create_flow(name)(a, b)
    assert flow.shape == (*a.shape[:2], 2) and flow.dtype == np.float32
    mean = flow[INNER].reshape(-1, 2).mean(axis=0)
    assert np.allclose(mean, [-3, 2], atol=0.25), mean
    aligned = warp(b, flow)
    before = np.abs(a.astype(float) - b)[INNER].mean()
    after = np.abs(a.astype(float) - aligned)[INNER].mean()
    assert after < 0.15 * before, (before, after)


def test_warp_with_exact_flow_reproduces_the_frame_in_any_layout():
    a, b = shifted(0, 0), shifted(4, 1)
    flow = np.zeros((*a.shape[:2], 2), np.float32)
    flow[..., 0], flow[..., 1] = -4, -1
    assert np.array_equal(warp(b, flow)[8:, 8:], a[8:, 8:])
    for image in (b[..., 0], b.astype(np.float32) / 255, b[..., :1], np.dstack([b, b])):
        out = warp(image, flow)
        assert out.shape == image.shape and out.dtype == image.dtype
    with pytest.raises(NStreamError):
        warp(b, flow[:10])


def test_flow_options_and_errors():
    assert create_flow("dis", preset="medium", scale=0.25).describe() == "dis/medium@0.25"
    with pytest.raises(NStreamError, match="unknown flow"):
        create_flow("lucas")
    with pytest.raises(NStreamError, match="preset"):
        create_flow("dis", preset="warp9")
    with pytest.raises(NStreamError, match="scale"):
        create_flow("dis", scale=3)
    with pytest.raises(NStreamError, match="bad option"):
        create_flow("farneback", preset="fast")
    with pytest.raises(NStreamError, match="no parameter"):
        create_flow("dis", settings={"Warp": 9})


def test_dis_works_on_half_the_frame_but_320_to_640_pixels_across():
    flow = create_flow("dis")
    assert flow.describe() == "dis/medium@auto"
    widths = (3840, 1920, 1280, 640, 480, 320, 160)
    assert [flow.working_scale(width) for width in widths] == pytest.approx([1 / 6, 1 / 3, 0.5, 0.5, 2 / 3, 1.0, 1.0])
    assert flow.shrink(np.zeros((360, 640, 3), np.uint8)).shape == (180, 320, 3)
    assert create_flow("dis", scale=0.25).working_scale(160) == 0.25  # an explicit scale is kept


def test_raft_without_cuda_is_one_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: RAFT is expected to build here")
    with pytest.raises(NStreamError, match="needs a CUDA GPU"):
        create_flow("raft_small")


def test_raft_code_path_runs_untrained_on_cpu():
    """Padding to a multiple of 8, transforms, output layout: everything but trained weights and CUDA."""
    from nstream.temporal.flow import RAFTFlow

    flow = RAFTFlow.untrained("raft_small")
    for width, height in ((100, 70), (200, 132)):  # below RAFT's 128-pixel minimum; not divisible by 8
        out = flow(shifted(2, 1, size=(width, height)), shifted(0, 0, size=(width, height)))
        assert out.shape == (height, width, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    assert flow.describe() == "raft_small@1" and flow.device == "cpu"


# -- occlusion -------------------------------------------------------------------------------------


def test_mask_marks_the_disoccluded_band_with_exact_flows():
    """Square at x=40 in x_{t-1}, x=46 in x_t: the mask over x_t is 0 on [40, 46) behind it."""
    height, width = 96, 160
    forward = np.zeros((height, width, 2), np.float32)  # flow(x_t, x_{t-1}): square pixels of x_t go back 6
    forward[30:54, 46:70, 0] = -6
    backward = np.zeros((height, width, 2), np.float32)  # flow(x_{t-1}, x_t): square pixels of x_{t-1} go on 6
    backward[30:54, 40:64, 0] = 6
    mask = reliability_mask(forward, backward)
    assert mask.dtype == np.float32 and mask.shape == (height, width)
    assert mask[32:52, 40:46].max() == 0  # disoccluded: hidden behind the square in x_{t-1}
    assert mask[32:52, 48:68].min() == 1  # the square itself, consistently tracked
    assert mask[:, :30].min() == 1 and mask[:, 80:].min() == 1  # still background
    assert mask[60:, :].min() == 1


def test_mask_without_backward_flow_keeps_boundaries_and_exits_only():
    height, width = 96, 160
    forward = np.zeros((height, width, 2), np.float32)
    forward[30:54, 46:70, 0] = -6
    forward[:, 150:, 0] = 12  # these pixels would come from beyond the right edge
    mask = reliability_mask(forward, None)
    assert mask[32:52, 40:45].min() == 1  # a disocclusion needs the backward flow (or the photometric check)
    assert mask[32:52, 45:47].max() == 0 and mask[32:52, 69:71].max() == 0  # motion boundaries
    assert mask[:, 152:].max() == 0 and mask[:, :140].mean() > 0.9
    with pytest.raises(NStreamError, match="HxWx2"):
        reliability_mask(forward, forward[:10])


def test_blend_tolerances_still_mark_a_disocclusion():
    from nstream.temporal.blend import BLEND_TOLERANCES

    height, width = 96, 160
    forward = np.zeros((height, width, 2), np.float32)
    forward[30:54, 46:70, 0] = -6
    backward = np.zeros((height, width, 2), np.float32)
    backward[30:54, 40:64, 0] = 6
    mask = reliability_mask(forward, backward, tolerances=BLEND_TOLERANCES)
    assert mask[32:52, 40:46].max() == 0 and mask[32:52, 48:68].min() == 1


@pytest.mark.skipif(not (SHARED / "video" / "bikes.mp4").is_file(), reason="../shared/data/video/bikes.mp4 is absent")
def test_blend_tolerances_keep_pixels_that_ruder_constants_drop_on_fast_motion():
    from nstream.temporal.blend import BLEND_TOLERANCES

    # real street footage at its fastest (bikes.mp4 frames 89 -> 90): the blend's own flow disagrees
    # with itself by a pixel or two over much of the frame; Ruder's constants drop those pixels
    from nstream.temporal.evaluate import read_frames

    frames = read_frames(str(SHARED / "video" / "bikes.mp4"), 91)
    flow = create_flow("dis")
    current, previous = flow.shrink(frames[90]), flow.shrink(frames[89])
    forward, backward = flow.compute(current, previous), flow.compute(previous, current)
    strict, loose = reliability_mask(forward, backward), reliability_mask(forward, backward, tolerances=BLEND_TOLERANCES)
    assert np.all(loose >= strict) and loose.mean() > strict.mean() + 0.1, (strict.mean(), loose.mean())


def test_mask_with_estimated_flow_and_out_of_frame_pixels():
    background = shifted(0, 0)
    prev, cur = object_frame(40, background), object_frame(46, background)
    flow = create_flow("dis", preset="medium", scale=1.0)
    mask = reliability_mask(flow(cur, prev), flow(prev, cur))
    assert mask[34:58, 41:45].mean() < 0.2  # the disoccluded band behind the square
    assert mask[34:58, 52:72].mean() > 0.9  # the square itself
    assert mask[:, 100:].mean() > 0.9 and mask[70:, :].mean() > 0.9  # background away from the object
    # a pan: the pixels of x_t that came in at the right edge have no source in x_{t-1}
    a, b = shifted(3, 0), shifted(0, 0)
    forward = flow(a, b)
    edge = reliability_mask(forward, flow(b, a))
    assert edge[:, -2:].mean() < 0.2 and edge[INNER].mean() > 0.95
    assert reliability_mask(forward, flow(b, a), outside=False)[:, -2:].mean() > 0.8


# -- blending --------------------------------------------------------------------------------------


def flickering(seed: int = 0, sigma: float = 12.0):
    """A stylization that flickers: per-frame noise on top of a steady pointwise map."""
    rng = np.random.default_rng(seed)

    def stylize(f: Frame) -> Frame:
        f.image = np.clip(255.0 - f.image + rng.normal(0, sigma, f.image.shape), 0, 255).astype(np.uint8)
        return f

    return stylize


def test_blending_reduces_warping_error_and_steady_is_zero():
    images = [shifted(1.5 * t, 0.5 * t) for t in range(10)]
    pairs = measure_pairs(images, create_flow("farneback"))
    steady = [255 - image for image in images]
    assert warping_error(steady, pairs=pairs) < 2e-4
    raw = run_sequence(Blended(flickering(), create_flow("dis"), strength=0.0), images)
    blended = run_sequence(Blended(flickering(), create_flow("dis"), strength=0.5), images)
    e_raw, e_blend = warping_error(raw, pairs=pairs), warping_error(blended, pairs=pairs)
    assert e_raw > 20 * warping_error(steady, pairs=pairs) and e_raw > 2e-3
    assert e_blend < 0.6 * e_raw, (e_raw, e_blend)


@pytest.mark.parametrize("strength, tolerance", [(0.5, 2.0), (MAX_STRENGTH, 6.0)])
def test_slow_pan_neither_freezes_nor_smears(strength, tolerance):
    images = [shifted(0.5 * t, 0) for t in range(30)]
    out = run_sequence(Blended(invert, create_flow("dis"), strength=strength), images)[-1]
    reference = 255 - images[-1]
    assert np.abs(out.astype(float) - reference)[INNER].mean() < tolerance  # follows the pan

    def detail(image: np.ndarray) -> float:
        grey = image[INNER].astype(np.float32).mean(axis=2)
        return float((np.diff(grey, axis=0) ** 2).mean() + (np.diff(grey, axis=1) ** 2).mean())

    assert 0.85 < detail(out) / detail(reference) < 1.25  # no blur build-up, no runaway sharpening


def test_restore_contrast_gives_back_the_fresh_luminance_spread_and_nothing_else():
    from nstream.temporal.blend import MAX_CONTRAST_GAIN, restore_contrast

    def luminance_std(image: np.ndarray) -> float:
        return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).std())

    fresh = shifted(0, 0)
    flat = (0.7 * fresh.astype(np.float32) + 0.3 * 128).round().astype(np.uint8)  # what averaging does to contrast
    restored = restore_contrast(flat, fresh)
    assert abs(luminance_std(restored) - luminance_std(fresh)) < 0.5 < luminance_std(fresh) - luminance_std(flat)
    assert np.allclose(restored.reshape(-1, 3).mean(0), flat.reshape(-1, 3).mean(0), atol=0.6)  # colour kept
    assert np.corrcoef(restored.ravel(), flat.ravel())[0, 1] > 0.999  # one gain: no stroke moves
    assert np.array_equal(restore_contrast(fresh, fresh), fresh)  # nothing to restore
    grey = np.full((48, 64, 3), 128, np.uint8)
    assert np.array_equal(restore_contrast(grey, fresh), grey)  # a flat frame cannot be stretched
    very_flat = (0.1 * fresh.astype(np.float32) + 0.9 * 128).round().astype(np.uint8)
    gained = luminance_std(restore_contrast(very_flat, fresh)) / luminance_std(very_flat)
    assert gained == pytest.approx(MAX_CONTRAST_GAIN, rel=0.05)  # the gain is capped


def test_mask_smoothing_softens_the_occlusion_edge():
    from nstream.temporal.blend import estimate_motion

    background = shifted(0, 0)
    prev, cur = object_frame(40, background), object_frame(46, background)
    flow = create_flow("dis")
    hard = estimate_motion(flow, cur, prev, None, smoothing=0).weight
    soft = estimate_motion(flow, cur, prev, None, smoothing=3).weight
    assert hard[34:58, 41:45].mean() < 0.3 and soft[34:58, 41:45].mean() < 0.5  # the disoccluded band stays out

    def steepest(weight: np.ndarray) -> float:
        return float(np.abs(np.diff(weight, axis=1)).max())

    assert steepest(soft) < 0.5 * steepest(hard)


@pytest.mark.parametrize("check", CHECKS)
def test_moving_object_leaves_no_ghost(check):
    background = shifted(0, 0)
    images = [object_frame(10 + 4 * t, background) for t in range(20)]
    blender = Blended(invert, create_flow("dis"), strength=MAX_STRENGTH, check=check)
    outputs = run_sequence(blender, images)
    reference = 255 - images[-1]
    error = np.abs(outputs[-1].astype(float) - reference).mean(axis=2)
    assert error[30:62, 60:78].mean() < 5  # where the square was 5 frames ago: background again
    assert error[34:58, 90:110].mean() < 5  # the square now
    assert blender.info["flow_resets"] == 0 and blender.info["scene_cuts"] == 0
    assert blender.info["temporal"].endswith("+consistency") == (check == "consistency")
    with pytest.raises(NStreamError, match="occlusion check"):
        Blended(invert, create_flow("dis"), check="psychic")


def walker_frame(x: int, phase: int) -> np.ndarray:
    """A 40x80 textured 'walker' at column x over a still 640x360 street: its lower half (the legs) slides
    against its upper half with ``phase``, so its motion is not one rigid shift."""
    image = STREET.copy()
    body = WALKER.copy()
    body[40:] = np.roll(WALKER[40:], 3 * phase, axis=1)
    image[140:220, x:x + 40] = body
    return image


STREET, WALKER = texture(360, 640, seed=3), texture(80, 40, seed=5)


def test_moving_subject_is_blended_and_leaves_no_ghost():
    from nstream.temporal.blend import estimate_motion

    flow = create_flow("dis")  # works at half size here: the walker's legs are too fine for it

    def weight_on_walker(refine: bool, camera: StillCamera | None = None) -> float:
        weights = [estimate_motion(flow, walker_frame(200 + 6 * t, t % 3), walker_frame(194 + 6 * t, (t - 1) % 3), None,
                                   refine=refine, camera=camera).weight[140:220, 200 + 6 * t:240 + 6 * t].mean()
                   for t in range(1, 7)]
        return float(np.mean(weights))

    always_still = StillCamera(check_every=10**6)
    always_still.checked(True)  # every frame's flow from the change alone
    coarse, refined, changed = weight_on_walker(False), weight_on_walker(True), weight_on_walker(True, always_still)
    assert refined > coarse + 0.1, (coarse, refined)  # measured 0.54 against 0.70
    # the default with a still camera: flow only around the change (measured 0.62; on vtest's walkers it
    # loses 0.4 point of E_warp on moving pixels for 40 % of the stage's CPU: docs/BENCHMARKS.md)
    assert changed > coarse + 0.05, (coarse, changed)
    images = [walker_frame(200 + 6 * t, t % 3) for t in range(12)]
    blender = Blended(invert, flow, strength=MAX_STRENGTH)
    error = np.abs(run_sequence(blender, images)[-1].astype(float) - (255 - images[-1])).mean(axis=2)
    assert error[140:220, 236:266].mean() < 5  # where the walker was 5 frames ago: the street again
    assert error[140:220, 266:306].mean() < 8  # the walker now: no trail of its earlier poses


def test_a_still_street_is_copied_and_only_the_walker_is_resampled():
    from nstream.temporal.blend import estimate_motion
    from nstream.temporal.still import warp_history

    motion = estimate_motion(create_flow("dis"), walker_frame(200, 1), walker_frame(194, 0), None, camera=StillCamera())
    assert motion.maps is None and motion.patches  # a still scene: warped in boxes only
    covered = np.zeros((360, 640), bool)
    for (x0, y0, x1, y1), _, _ in motion.patches:
        covered[y0:y1, x0:x1] = True
    assert covered[140:220, 200:240].all()  # the walker
    assert covered.mean() < 0.1, covered.mean()  # and not the street
    history = texture(360, 640, seed=9)
    warped = warp_history(history, motion.patches)
    assert np.array_equal(warped[~covered], history[~covered])
    assert not np.array_equal(warped[140:220, 200:240], history[140:220, 200:240])


def test_a_still_camera_gets_a_whole_frame_flow_every_fourth_frame():
    from nstream.temporal.blend import estimate_motion

    flow, calls = create_flow("dis"), []
    compute = flow.compute
    flow.compute = lambda a, b: calls.append(1) or compute(a, b)
    camera = StillCamera()
    for t in range(1, 9):
        estimate_motion(flow, walker_frame(200 + 6 * t, t % 3), walker_frame(194 + 6 * t, (t - 1) % 3), None, camera=camera)
    assert len(calls) == 2  # frames 1 and 5; the others only around the walker


def test_a_change_only_frame_blends_uniformly_outside_its_boxes():
    from dataclasses import replace

    from nstream.temporal.blend import blend, estimate_motion

    camera = StillCamera()
    camera.checked(True)  # a still camera: this frame's flow from the change alone
    motion = estimate_motion(create_flow("dis"), walker_frame(200, 1), walker_frame(194, 0), None, camera=camera)
    assert motion.uniform and motion.patches and motion.cut is None
    covered = np.zeros((360, 640), bool)
    for (x0, y0, x1, y1), _, _ in motion.patches:
        covered[y0:y1, x0:x1] = True
    assert (motion.weight[~covered] == 1).all() and motion.weight[covered].min() < 0.5  # the walker's old place
    styled, history = texture(360, 640, seed=11), texture(360, 640, seed=12)
    fast = blend(styled, history, motion, 0.7, contrast=False)
    general = blend(styled, history, replace(motion, uniform=False), 0.7, contrast=False)  # warp_history, then blendLinear
    assert np.abs(fast.astype(int) - general).max() <= 1  # the two OpenCV mixes round alike but for float error


def test_no_still_scene_turns_the_shortcuts_off():
    from nstream.cli import stream_parser, temporal_config
    from nstream.temporal.config import build_temporal_stage

    stages = [build_temporal_stage(temporal_config(stream_parser().parse_args(["-i", "x", *extra])), live=False)
              for extra in ([], ["--no-still-scene"])]
    assert stages[0].camera is not None and stages[1].camera is None
    assert stages[1].info["temporal"].endswith("no-still-scene") and "still" not in stages[0].info["temporal"]
    for stage in stages:
        stage.close()


def test_changes_are_found_through_grain_and_flicker():
    from nstream.temporal.still import changed_pixels

    rng = np.random.default_rng(1)
    street = cv2.cvtColor(texture(180, 320, seed=7), cv2.COLOR_RGB2GRAY).astype(np.float32)

    def grainy(gain: float = 1.0) -> np.ndarray:
        return np.clip((street + rng.normal(0, 3, street.shape)) * gain, 0, 255).astype(np.uint8)

    before, after = grainy(), grainy(1.04)  # film grain, and a 4 % brightness flicker between the two
    assert changed_pixels(after, before).mean() < 0.01
    after[60:100, 100:140] = 255 - after[60:100, 100:140]  # something new there
    changed = changed_pixels(after, before)
    assert changed[62:98, 102:138].mean() > 0.8 and changed[:, 180:].mean() < 0.01


def test_a_pan_gets_the_whole_frame_flow():
    from nstream.temporal.blend import estimate_motion

    earlier, later = np.ascontiguousarray(STREET[:, :-3]), np.ascontiguousarray(STREET[:, 3:])  # a 3-pixel pan
    camera = StillCamera()
    camera.checked(True)  # a still camera so far
    pan = estimate_motion(create_flow("dis"), later, earlier, None, camera=camera)
    assert pan.maps is not None and pan.patches is None  # everything changed: the whole-frame flow and warp
    assert not camera.may_skip()  # and the next frame's too, until one finds the camera still again
    still = estimate_motion(create_flow("dis"), earlier, earlier.copy(), None, camera=camera)
    assert still.patches == [] and still.weight.min() > 0.99  # nothing changed: nothing to warp, all blended
    assert camera.may_skip()


def test_snapped_boxes_warp_exactly_as_the_whole_frame_would():
    from nstream.temporal.flow import upscale_flow
    from nstream.temporal.still import box_maps, still_regions, warp_history
    from nstream.temporal.warp import sampling_map

    rng = np.random.default_rng(4)
    small = rng.normal(0, 0.005, (180, 320, 2)).astype(np.float32)  # a still scene's flow noise (half size)
    small[60:90, 100:140] = (1.5, -0.75)  # something moving
    full = upscale_flow(small, 360, 640) + rng.normal(0, 0.01, (360, 640, 2)).astype(np.float32)
    still = still_regions(small, 360, 640)
    assert still is not None and len(still.boxes) == 1
    assert not small[:50].any() and small[70, 120, 0] == 1.5  # noise snapped to zero, motion kept
    history = texture(360, 640, seed=2)
    snapped = cv2.convertMaps(sampling_map(full * still.moving[..., None]), None, cv2.CV_16SC2)
    whole = cv2.remap(history, *snapped, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(warp_history(history, box_maps(full, still)), whole)


def test_a_slow_pan_is_not_snapped():
    from nstream.temporal.still import still_regions

    pan = np.full((180, 320, 2), (0.04, 0.0), np.float32)  # 0.08 full-size pixels a frame: slow, but everywhere
    assert still_regions(pan, 360, 640) is None and (pan[..., 0] == 0.04).all()
    quiet = np.zeros((180, 320, 2), np.float32)
    assert still_regions(quiet, 360, 640).boxes == []


def test_hard_cut_resets_the_history():
    first = [shifted(t, 0) for t in range(5)]
    second = [np.ascontiguousarray(shifted(t, 0)[:, ::-1, ::-1] // 2 + 100) for t in range(3)]
    blender = Blended(flickering(sigma=0), create_flow("dis"), strength=0.5)
    outputs = run_sequence(blender, first + second)
    assert blender.info["scene_cuts"] == 1
    assert np.array_equal(outputs[5], 255 - second[0])  # the first frame of a shot is never blended
    assert not np.array_equal(outputs[6], 255 - second[1])  # and blending starts again after it
    # without the histogram check, the flow failure still resets the history
    blind = Blended(flickering(sigma=0), create_flow("dis"), strength=0.5, cut_threshold=None)
    outputs = run_sequence(blind, first + [texture(96, 160, seed=9)])
    assert blind.info["flow_resets"] == 1 and np.array_equal(outputs[-1], 255 - texture(96, 160, seed=9))


def test_motion_says_why_it_cut_with_an_enum():
    from nstream.temporal.blend import Cut, estimate_motion

    flow = create_flow("dis")
    new_shot = np.full((96, 160, 3), (200, 30, 90), np.uint8)
    camera = StillCamera()
    camera.checked(True)
    assert estimate_motion(flow, new_shot, shifted(0), SceneCutDetector(), camera=camera).cut is Cut.SCENE
    assert not camera.may_skip()  # a new shot's camera is still only once a whole-frame flow says so
    assert estimate_motion(flow, texture(96, 160, seed=9), shifted(0), None).cut is Cut.FLOW_FAILED
    assert estimate_motion(flow, shifted(1), shifted(0), SceneCutDetector()).cut is None


def test_scene_cut_detector_threshold():
    detector = SceneCutDetector()
    assert detector.distance(shifted(0)) == 0.0
    assert not detector.is_cut(detector.distance(shifted(2)))
    assert detector.is_cut(detector.distance(np.full((96, 160, 3), (200, 30, 90), np.uint8)))
    with pytest.raises(NStreamError):
        SceneCutDetector(1.5)
    with pytest.raises(NStreamError, match="out of range"):
        check_strength(0.95)


def test_a_stream_works_on_each_frame_once(monkeypatch):
    """The motion step sees every frame twice (as x_t, then as x_{t-1}): its shrunk copy and its
    colour histogram are made once, and the distances equal those of a detector without memory."""
    import nstream.temporal.scenecut as scenecut
    from nstream.temporal.blend import estimate_motion

    frames = [shifted(dx) for dx in (0, 1, 2, 3)] + [np.full((96, 160, 3), (200, 30, 90), np.uint8)]
    histograms = []
    monkeypatch.setattr(scenecut, "colour_histogram", lambda image, real=scenecut.colour_histogram:
                        histograms.append(image) or real(image))
    flow, detector = create_flow("dis"), SceneCutDetector()
    shrunk = []
    flow._shrunk.function = lambda image, real=flow._shrunk.function: shrunk.append(image) or real(image)
    motions = [estimate_motion(flow, frames[t], frames[t - 1], detector) for t in range(1, len(frames))]
    assert len(shrunk) == len(histograms) == len(frames)  # not twice as many
    fresh = [SceneCutDetector().compare(flow.shrink(a), flow.shrink(b)) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    assert [m.histogram_distance for m in motions] == pytest.approx(fresh)
    assert [m.cut is not None for m in motions] == [False, False, False, True]
    same_pixels = frames[1].copy()  # equal pixels in another array: worked on again, never taken for the old one
    estimate_motion(flow, same_pixels, frames[0], detector)
    assert shrunk[-1] is same_pixels

class SlowFlow(FlowBackend):
    """A real DIS flow that takes 0.3 s: stands for a flow that cannot keep up."""

    name = "slow-dis"

    def __init__(self) -> None:
        super().__init__(1.0)
        self.inner = create_flow("dis")

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        time.sleep(0.3)
        return self.inner(a, b)


def test_live_mode_sends_frames_unblended_when_flow_falls_behind():
    images = [shifted(t, 0) for t in range(6)]
    live = Blended(invert, SlowFlow(), strength=0.5, live=True)
    started = time.perf_counter()
    outputs = run_sequence(live, images)
    assert time.perf_counter() - started < 1.0  # never waited for the 0.6 s flow pairs
    assert live.info["unblended"] == 5
    assert all(np.array_equal(out, 255 - image) for out, image in zip(outputs, images, strict=True))
    live.close()
    # a file source waits for the flow instead: every frame after the first is blended
    stats = type("Stats", (), {"info": {}})()
    filed = Blended(invert, SlowFlow(), strength=0.5, live=False, stats=stats)
    run_sequence(filed, images[:3])
    assert stats.info["unblended"] == 0 and stats.info["flow_ms"] >= 300


def test_file_mode_queues_the_flow_at_decode_time_with_the_same_result():
    images = [shifted(1.5 * t, 0.5 * t) for t in range(6)]
    plain = run_sequence(Blended(flickering(sigma=0), create_flow("dis"), strength=0.7), images)
    ahead = Blended(flickering(sigma=0), create_flow("dis"), strength=0.7)
    frames = [frame(image, i) for i, image in enumerate(images)]
    for f in frames:
        ahead.prepare(f)  # the decode thread, before any frame reaches the network
    frames[-1].ahead["motion"].result()
    assert ahead.flow_runs == 5 and "motion" not in frames[0].ahead  # the first frame has nothing to blend with
    outputs = [ahead.stage.process(ahead.stylize(f)).image for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(plain, outputs, strict=True))
    assert ahead.info["unblended"] == 0
    ahead.close()
    # live frames never queue work behind a job still running: it would add latency (the pipeline
    # prepares live frames only as they leave its queue: tests/test_pipeline.py)
    live = TemporalStage(SlowFlow(), strength=0.7, live=True)
    first, second, third = (frame(image, i) for i, image in enumerate(images[:3]))
    for f in (first, second, third):
        live.prepare(f)
    assert "motion" in second.ahead and "motion" not in third.ahead and third.ahead["flow busy"]
    assert live.process(invert(third)).image is not None and live.info["unblended"] == 1
    live.close()


# -- shared data (skipped without ../shared) -------------------------------------------------------


def read_flo(path) -> np.ndarray:
    with open(path, "rb") as handle:
        assert np.frombuffer(handle.read(4), np.float32)[0] == np.float32(202021.25)
        width, height = np.frombuffer(handle.read(8), np.int32)
        return np.frombuffer(handle.read(), np.float32).reshape(height, width, 2)


@pytest.mark.skipif(not (SHARED / "flow" / "flyingchairs").is_dir(), reason="../shared/data/flow/flyingchairs is absent")
def test_dis_end_point_error_on_flyingchairs():
    folder = SHARED / "flow" / "flyingchairs"
    flow = create_flow("dis", preset="medium", scale=1.0)
    errors, zero = [], []
    for gt_path in sorted(folder.glob("*-gt.flo")):
        stem = gt_path.name[:-len("-gt.flo")]
        a, b = (cv2.cvtColor(cv2.imread(str(folder / f"{stem}-img{i}.ppm")), cv2.COLOR_BGR2RGB) for i in (0, 1))
        truth = read_flo(gt_path)
        errors.append(float(np.linalg.norm(flow(a, b) - truth, axis=2).mean()))
        zero.append(float(np.linalg.norm(truth, axis=2).mean()))
    # FlyingChairs' large chair motions are hard for DIS (measured 4.4 px against 5.0 for zero flow):
    # this checks the sign convention and units, not state-of-the-art accuracy.
    assert np.mean(errors) < 0.95 * np.mean(zero), (errors, zero)


@pytest.mark.skipif(not (SHARED / "video" / "bikes.mp4").is_file(), reason="../shared/data/video/bikes.mp4 is absent")
def test_scene_cuts_found_in_real_footage():
    from nstream.temporal.evaluate import read_frames

    frames = read_frames(str(SHARED / "video" / "bikes.mp4"), 250, size=160)
    detector = SceneCutDetector()
    cuts = [i for i, image in enumerate(frames) if detector.is_cut(detector.distance(image))]
    assert cuts == [30, 76, 137, 187, 242], cuts


# -- the real command ------------------------------------------------------------------------------


def test_stream_with_temporal_blending(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=10, size=(64, 48), audio=False)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(out), "--temporal-strength", "0.6",
                        "--flow", "dis", "--flow-scale", "0.5", "--flow-preset", "ultrafast", "--no-dashboard",
                        "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert probe(out)["frames"] == 10
    figures = json.loads(stats.read_text())
    assert figures["temporal"] == "a=0.6 flow=dis/ultrafast@0.5" and figures["unblended"] == 0
    assert figures["scene_cuts"] == 0 and figures["flow_resets"] >= 0 and figures["flow_ms"] > 0
    assert "temporal: a=0.6 flow=dis/ultrafast@0.5   flow " in result.stdout + result.stderr  # the closing summary

    from rich.console import Console

    from nstream.dashboard import render

    console = Console(record=True, width=140, file=open(os.devnull, "w"))  # noqa: SIM115 - recorded, not shown
    console.print(render(figures))
    assert f"scene cuts 0   flow resets {figures['flow_resets']}" in console.export_text()


def test_stream_leaves_no_flow_worker_behind(tmp_path, style_model):
    import threading

    from nstream.cli import run_stream as run_in_process
    from nstream.cli import stream_parser

    clip = make_clip(tmp_path / "in.mp4", frames=4, size=(64, 48), audio=False)
    before = set(threading.enumerate())
    run_in_process(stream_parser().parse_args(["-i", str(clip), "-s", str(style_model), "-o", "null", "--no-dashboard",
                                               "--temporal-strength", "0.5"]))
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("flow")]


def test_stream_temporal_option_errors(tmp_path, style_model):
    clip = make_clip(tmp_path / "in.mp4", frames=2, size=(32, 24), audio=False)
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(tmp_path / "o.mp4"), "--temporal-strength", "2",
                        "--no-dashboard")
    assert_one_line_error(result, "temporal strength")
    assert not (tmp_path / "o.mp4").exists()
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(tmp_path / "o.mp4"), "--mask-smoothing", "-1",
                        "--no-dashboard")
    assert_one_line_error(result, "--mask-smoothing")


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["farneback", "dis-fine"])
def test_eval_command_reports_both_settings_and_writes_pictures(tmp_path, metric):
    import subprocess
    import sys

    from conftest import ROOT

    clip = make_clip(tmp_path / "in.mp4", frames=8, size=(96, 64), audio=False)
    cv2.imwrite(str(tmp_path / "painting.png"), (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    result = subprocess.run([sys.executable, "-m", "nstream", "eval", str(clip), "--style", "starry_night_lite",
                             "--style-image", str(tmp_path / "painting.png"), "--max-frames", "8", "--json",
                             "--metric-flow", metric, "--threads", "1", "--out", str(tmp_path / "eval")],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 8 and report["metric_flow"] == {"farneback": "farneback@1", "dis-fine": "dis/fine@1"}[metric]
    off, blended = report["settings"]["off"], report["settings"][f"blend a={DEFAULT_STRENGTH:g}"]
    assert off["e_warp"] > 0 and blended["e_warp"] > 0 and off["style_loss"] > 0 and blended["fps"] > 0
    assert blended["temporal"] == f"a={DEFAULT_STRENGTH:g} flow=dis/balanced@auto"
    assert all((tmp_path / "eval" / name).is_file() for name in ("strip.png", "diff.png"))
    assert report["input_e_warp_moving"] >= 0 and off["e_warp_moving"] >= 0 and "excess_removed" not in off
    floor = report["input_e_warp"]  # None: stylizing this clip adds no flicker over the input's own
    excess = (off["e_warp"] - blended["e_warp"]) / (off["e_warp"] - floor) if off["e_warp"] > floor else None
    assert blended["excess_removed"] == pytest.approx(excess) and 0 < blended["blended_share"] <= 1
    assert cv2.imread(str(tmp_path / "eval" / "diff.png")).shape[0] == 3 * 64  # off, blended, the mask
    # progress on stderr (a plain line per stage here: not a terminal), so stdout stays JSON
    assert "flow (" in result.stderr and "stylize, off: 8/8" in result.stderr



def test_excess_removed_share():
    from nstream.temporal.metrics import excess_removed

    assert excess_removed(1e-4, 3e-4, 1.5e-4) == pytest.approx(0.75)  # 2e-4 of excess, 1.5e-4 of it gone
    assert excess_removed(3e-4, 2e-4, 1e-4) is None  # stylizing added nothing over the input's own E_warp


# -- the decoder's motion vectors ------------------------------------------------------------------


def encode_pan(path, count: int = 8, bframes: int = 0):
    """A texture panned 3 px left and 1 px up per frame (content moves by (-3, -1)), H.264 at 320x192."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": str(bframes), "refs": "1"})
        stream.width, stream.height, stream.pix_fmt = 320, 192, "yuv420p"
        for t in range(count):
            image = np.ascontiguousarray(texture(260, 400, seed=4)[t:t + 192, 3 * t:3 * t + 320])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def test_file_source_attaches_motion_vectors_that_follow_the_pan(tmp_path):
    from nstream.media.sources import open_source
    from nstream.temporal.vectors import vectors_to_flow

    source = open_source(str(encode_pan(tmp_path / "pan.mp4")), motion_vectors=True)
    frames = list(source.frames())
    source.close()
    assert frames[0].vectors is None  # the I-frame predicts from nothing
    for frame in frames[1:]:
        coded = frame.vectors
        assert (coded.height, coded.width) == (192, 320)
        flow, known = vectors_to_flow(coded.vectors[coded.vectors["source"] < 0], 192, 320, (160, 96))
        inner = known[8:-8, 8:-8] > 0  # flow(x_t, x_{t-1}) at half size: the content came from (+1.5, +0.5)
        assert inner.mean() > 0.8
        assert np.median(flow[8:-8, 8:-8][inner], axis=0) == pytest.approx([1.5, 0.5], abs=0.3)
    plain = open_source(str(tmp_path / "pan.mp4"))
    assert all(frame.vectors is None for frame in plain.frames())  # opt-in only
    plain.close()


def test_motion_vectors_are_dropped_once_b_frames_show(tmp_path):
    from nstream.media.sources import open_source

    source = open_source(str(encode_pan(tmp_path / "b.mp4", count=12, bframes=2)), motion_vectors=True)
    frames = list(source.frames())
    source.close()
    assert len(frames) == 12 and all(frame.vectors is None for frame in frames)


def test_vector_flow_blends_a_pan_without_dis(tmp_path):
    from nstream.media.sources import open_source

    source = open_source(str(encode_pan(tmp_path / "pan.mp4", count=10)), motion_vectors=True)
    flow = create_flow("vectors")
    blender = Blended(invert, flow, strength=0.5)
    frames = list(source.frames())
    source.close()
    inputs = [frame.image for frame in frames]
    for frame in frames:
        blender.prepare(frame)  # file mode, as the pipeline runs it: the motion job queued at decode time
    outputs = [blender.stage.process(blender.stylize(frame)).image for frame in frames]
    blender.close()
    assert flow.fallbacks == 0 and flow.describe() == "vectors+dis/medium@auto"
    error = np.abs(outputs[-1].astype(float) - (255 - inputs[-1])).mean(axis=2)
    assert error[INNER].mean() < 4  # a steady 'stylization' of a pan stays where it belongs
    with pytest.raises(NStreamError, match="unknown flow"):
        create_flow("telepathy")


def test_refinement_boxes_cover_moving_regions_and_leave_pans_alone():
    from nstream.temporal.refine import MARGIN, moving_boxes

    flow = np.zeros((90, 160, 2), np.float32)  # working size of a 360x640 frame
    flow[40:60, 50:60] = (2.0, 0.0)  # one walker
    flow[5, 5] = (2.0, 0.0)  # a speck: noise, not a subject
    (x0, y0, x1, y1), = moving_boxes(flow, 360, 640)
    assert x0 <= 200 - MARGIN and x1 >= 240 + MARGIN and y0 <= 160 - MARGIN and y1 >= 240 + MARGIN
    assert (x1 - x0) * (y1 - y0) < 0.1 * 360 * 640
    assert moving_boxes(np.full((90, 160, 2), 1.5, np.float32), 360, 640) == []  # a pan: the coarse flow serves it


def test_stream_with_motion_vectors(tmp_path, style_model):
    clip = encode_pan(tmp_path / "pan.mp4", count=6)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    result = run_stream("-i", str(clip), "-s", str(style_model), "-o", str(out), "--flow", "vectors", "--no-dashboard",
                        "--stats-json", str(stats))
    assert result.returncode == 0, result.stderr
    assert probe(out)["frames"] == 6
    figures = json.loads(stats.read_text())
    assert figures["temporal"] == f"a={DEFAULT_STRENGTH:g} flow=vectors+dis/balanced@auto" and figures["unblended"] == 0
