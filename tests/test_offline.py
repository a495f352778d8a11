"""offline.py: Gatys–Ruder optimization on stills and videos, tiny sizes, random VGG19, CPU.

Sizes of 32-48 pixels and a handful of iterations keep the whole file to a minute or two; one
torch thread, because on a shared 2-core machine OpenMP threads spinning against each other cost
far more than they give.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, assert_one_line_error, make_clip, probe
from nstream.losses import total_variation as tv_loss
from nstream.offline_cli import build_parser, main, run
from nstream.optimize.loop import optimize
from nstream.optimize.losses import long_term_weights
from nstream.optimize.video import read_png
from nstream.temporal.metrics import warping_error
from nstream.temporal.occlusion import LOOSE, RUDER

FAST = ["--loss-net", "random", "--threads", "1", "--no-progress", "-e", "0"]


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour texture with detail at three scales: something for flow and VGG to hold on to."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for sigma, amplitude in ((8, 1.0), (3, 0.6), (1.2, 0.3)):
        image += amplitude * cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), sigma)
    image -= image.min(axis=(0, 1))
    image /= image.max(axis=(0, 1))
    return (image * 255).astype(np.uint8)


def save(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stripy, high-contrast style image, unlike the smooth content."""
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((np.sin((x + y) / 2.0) > 0) * 200 + 30).astype(np.uint8)
    image = np.stack([stripes, 255 - stripes, np.full_like(stripes, 90)], axis=-1)
    return save(tmp_path_factory.mktemp("style") / "stripes.png", image)


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 6 frames: a window sliding 2 px right and 1 px down per frame over a texture."""
    folder = tmp_path_factory.mktemp("moving")
    canvas = texture(32 + 20, 40 + 20)
    for i in range(6):
        save(folder / f"f{i:03d}.png", canvas[i:i + 32, 2 * i:2 * i + 40])
    return folder


def frames_of(work: Path, count: int, folder: str = "pass1") -> list[np.ndarray]:
    return [read_png(work / folder / f"{i:06d}.png") for i in range(count)]


# -- losses and loop -----------------------------------------------------------------------------

def test_long_term_weights_count_each_pixel_once_for_the_closest_frame():
    near = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    mid = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    far = np.array([1.0, 1.0, 1.0, 0.0], np.float32)
    weights = long_term_weights([near, mid, far])
    assert weights[0].tolist() == [1, 0, 0, 1]
    assert weights[1].tolist() == [0, 1, 0, 0]
    assert weights[2].tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optimizers_lower_a_loss(method):
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def loss_fn(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = (x - target).pow(2).mean() + 0.01 * tv_loss(x)
        return loss, {"total": float(loss.detach())}

    result = optimize(torch.full_like(target, 0.5), loss_fn, 30, method, lr=0.05 if method == "adam" else None)
    assert result.iterations == 30
    assert result.terms["total"] < 0.3 * result.first_terms["total"]


# -- stills --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_still_losses_fall_and_image_is_written(tmp_path, style):
    content = save(tmp_path / "photo.png", texture(40, 48, seed=3))
    out = tmp_path / "styled.png"
    args = build_parser().parse_args(["-c", str(content), "-s", str(style), "-o", str(out), "-z", "40", "-i", "25", *FAST])
    result = run(args)
    first, last = result["first_terms"], result["terms"]
    assert last["total"] < 0.5 * first["total"], (first, last)
    assert last["style"] < first["style"]
    image = cv2.imread(str(out))
    assert image.shape == (33, 40, 3)  # longest side 40, aspect kept


@pytest.mark.slow
def test_two_styles_blend_preserve_colors_and_scales(tmp_path, style, capsys):
    content = save(tmp_path / "photo.png", texture(32, 32, seed=4))
    other = save(tmp_path / "other.png", texture(40, 40, seed=9))
    out = tmp_path / "blend.png"
    code = main(["-c", str(content), "-s", str(style), str(other), "--style-blend-weights", "0.7", "0.3", "-o", str(out),
                 "-z", "32", "-i", "6", "--scales", "2", "--preserve-colors", "-I", "random", *FAST])
    assert code == 0, capsys.readouterr().err
    styled = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2YCrCb)
    original = cv2.cvtColor(cv2.imread(str(content)), cv2.COLOR_BGR2YCrCb)
    assert np.abs(styled[..., 1:].astype(int) - original[..., 1:]).mean() < 3  # colours kept, within rounding


def test_magenta_loss_net_from_a_stylized_start(tmp_path, capsys):
    """The style predictor's MobileNetV2 as the loss network, started from the arbitrary-style
    network's picture: losses fall, and the start is the feed-forward stylization, not the photo."""
    from nstream.models.style_spec import PAINTINGS_DIR
    from nstream.optimize.config import OfflineConfig
    from nstream.optimize.render import build_transfer

    painting = PAINTINGS_DIR / "wave.jpg"
    content = save(tmp_path / "photo.png", texture(48, 64, seed=5))
    out = tmp_path / "magenta.png"
    result = run(build_parser().parse_args(["-c", str(content), "-s", str(painting), "-o", str(out), "-z", "64", "-i", "15",
                                            "--loss-net", "magenta", "-I", "stylized", "--threads", "1", "--no-progress",
                                            "-e", "0"]))
    assert result["terms"]["total"] < result["first_terms"]["total"], result
    assert cv2.imread(str(out)).shape == (48, 64, 3)
    config = OfflineConfig(content=str(content), styles=[str(painting)], loss_net="magenta", init="stylized")
    image = cv2.cvtColor(cv2.imread(str(content)), cv2.COLOR_BGR2RGB)
    transfer = build_transfer(config, [image], torch.device("cpu"))
    start = transfer.start_image(image, "stylized")
    assert start.shape == image.shape and np.abs(start - image / 255.0).mean() > 0.05  # a painted start, not the photo


# -- video ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_temporal_loss_lowers_warping_error(tmp_path, moving, style):
    """Same run with and without -T: the temporal loss makes consecutive results agree along the motion."""
    errors = {}
    inputs = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(moving.glob("*.png"))]
    for flag in ("--temporal-loss", "--no-temporal-loss"):
        out = tmp_path / f"{flag.strip('-')}.mp4"
        assert main(["-c", f"{moving}/", "-s", str(style), "-o", str(out), "-z", "40", "-i", "20,10", flag, *FAST]) == 0
        errors[flag] = warping_error(frames_of(Path(f"{out}.work"), 6), inputs)
    assert errors["--temporal-loss"] < 0.7 * errors["--no-temporal-loss"], errors


@pytest.mark.slow
def test_stopped_render_resumes_at_the_next_frame(tmp_path, moving, style, capsys):
    out = tmp_path / "resumed.mp4"
    common = ["-c", f"{moving}/", "-s", str(style), "-o", str(out), "-z", "32", "-i", "6,4", "--long-term", "1,2", *FAST]
    assert main([*common, "--max-frames", "2"]) == 0
    work = Path(f"{out}.work")
    done = sorted(p.name for p in (work / "pass1").glob("*.png"))
    assert done == ["000000.png", "000001.png"]
    assert not out.exists()
    stamps = {name: (work / "pass1" / name).stat().st_mtime_ns for name in done}
    capsys.readouterr()
    assert main(common) == 0
    captured = capsys.readouterr()
    assert "resuming: 2 finished frame(s)" in captured.err
    assert {name: (work / "pass1" / name).stat().st_mtime_ns for name in done} == stamps
    indices = [json.loads(line)["index"] for line in (work / "frames.jsonl").read_text().splitlines()]
    assert indices == [0, 1, 2, 3, 4, 5]  # every frame computed exactly once
    assert probe(out)["frames"] == 6

    # changed settings never mix with the stored frames; --no-resume starts over
    assert main([*common, "-y", "3"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main([*common, "-y", "3", "--no-resume", "--max-frames", "1"]) == 0
    assert sorted(p.name for p in (work / "pass1").glob("*.png")) == ["000000.png"]


def test_finished_render_goes_on_with_more_passes_and_their_own_settings(tmp_path, moving, style, capsys):
    out = tmp_path / "passes.mp4"
    common = ["-c", f"{moving}/", "-s", str(style), "-o", str(out), "-z", "32", "-i", "4,2", "--limit-frames", "3", *FAST]
    assert main(common) == 0
    work = Path(f"{out}.work")
    stamps = {p.name: p.stat().st_mtime_ns for p in (work / "pass1").glob("*.png")}
    assert main([*common, "--passes", "2", "--pass-iters", "3"]) == 0  # pass 1 is reused, not redone
    assert {p.name: p.stat().st_mtime_ns for p in (work / "pass1").glob("*.png")} == stamps
    assert len(list((work / "pass2").glob("*.png"))) == 3
    capsys.readouterr()
    assert main([*common, "--passes", "2", "--pass-iters", "4"]) == 2  # pass-2 frames exist: no mixing
    assert "pass_iters differs" in capsys.readouterr().err


def test_a_shot_renders_on_its_own_from_python(tmp_path, moving, style):
    """No argparse: a config, the work folder filled once, then frames [3, 6) as a sequence of their own
    (a cluster worker's shot): its first frame starts afresh, nothing outside it is made."""
    from nstream.optimize.config import OfflineConfig
    from nstream.optimize.render import prepare_video

    config = OfflineConfig(content=f"{moving}/", styles=[str(style)], output=str(tmp_path / "shot.mp4"), resize=32,
                           iters=(5, 2), loss_net="random", threads=1, early_stopping=0.0)
    job = prepare_video(config)
    assert job.count == 6
    reports, complete = job.render_frames(3, 6)
    assert complete and [r.index for r in reports] == [3, 4, 5]
    assert [r.iterations for r in reports] == [5, 2, 2]  # the shot's first frame gets the first-frame iterations
    work = Path(f"{tmp_path / 'shot.mp4'}.work")
    assert sorted(p.name for p in (work / "pass1").glob("*.png")) == ["000003.png", "000004.png", "000005.png"]
    assert not list((work / "flow").glob("000003-000002.npz"))  # never looked across the shot's start


def test_flow_cache_masks_use_its_tolerances(tmp_path):
    """A flow pair that disagrees by 1.5 px: unreliable under Ruder's constants, reliable under the loose ones."""
    from nstream.optimize.video import FlowCache, WorkFolder

    def disagreeing(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # forward moves 1.5 px left, backward not at all
        flow = np.zeros((*a.shape[:2], 2), np.float32)
        if a[0, 0, 0] == 0:
            flow[..., 0] = -1.5
        return flow

    frames = [np.zeros((24, 32, 3), np.uint8), np.full((24, 32, 3), 9, np.uint8)]
    shares = {}
    for name, tolerances in (("ruder", RUDER), ("loose", LOOSE)):
        work = WorkFolder(tmp_path / name)
        work.prepare({}, resume=False)
        work.store_content(iter(frames), {}, 32, 24)
        _, mask = FlowCache(work, disagreeing, f"test {name}", tolerances).get(0, 1)
        shares[name] = float(mask[:, 4:-4].mean())
    assert shares == {"ruder": 0.0, "loose": 1.0}, shares


def test_mask_choice_shapes_the_cached_masks_and_old_work_folders_resume_with_ruder(tmp_path, moving, style, capsys):
    out = tmp_path / "masks.mp4"
    common = ["-c", f"{moving}/", "-s", str(style), "-o", str(out), "-z", "32", "-i", "4,2", "--limit-frames", "3", *FAST]
    work = Path(f"{out}.work")

    def masks_follow(tolerances: object) -> bool:
        """Every cached mask is the reliability mask of its two cached flows under ``tolerances``."""
        from nstream.temporal.occlusion import reliability_mask

        pairs = [tuple(int(i) for i in p.stem.split("-")) for p in (work / "flow").glob("*.npz")]
        stored = {pair: np.load(work / "flow" / f"{pair[0]:06d}-{pair[1]:06d}.npz") for pair in pairs}
        return bool(pairs) and all(np.array_equal(stored[(a, b)]["mask"],
                                                  reliability_mask(stored[(a, b)]["flow"], stored[(b, a)]["flow"],
                                                                   tolerances=tolerances)) for a, b in pairs)

    assert main([*common, "--mask", "ruder"]) == 0
    settings = json.loads((work / "settings.json").read_text())
    assert "mask" not in settings  # what a work folder from before --mask holds
    assert masks_follow(RUDER)
    capsys.readouterr()
    assert main(common) == 2  # the default (loose) never mixes with frames made with Ruder's mask
    assert "mask differs" in capsys.readouterr().err
    assert main([*common, "--no-resume"]) == 0
    assert json.loads((work / "settings.json").read_text())["mask"] == "loose"
    assert masks_follow(LOOSE)
    assert (work / "flow" / "meta.json").read_text().endswith("mask=loose")


@pytest.mark.slow
def test_sigterm_keeps_finished_frames_and_the_rerun_continues(tmp_path, moving, style, capsys):
    """A real stop mid-render: whole frames only, exit 130, and the rerun picks up after them."""
    out = tmp_path / "stopped.mp4"
    common = ["-c", f"{moving}/", "-s", str(style), "-o", str(out), "-z", "32", "-i", "40,40", *FAST]
    proc = subprocess.Popen([sys.executable, str(ROOT / "offline.py"), *common], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    second = Path(f"{out}.work") / "pass1" / "000001.png"
    deadline = time.monotonic() + 120
    while not second.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    folder = Path(f"{out}.work") / "pass1"
    finished = sorted(p.name for p in folder.glob("*.png") if not p.name.startswith("."))
    assert 2 <= len(finished) < 6 and not list(folder.glob(".*"))  # no half-written frame left behind
    assert main([*common, "-i", "3,3"]) == 2  # different settings are refused, never mixed in
    capsys.readouterr()
    assert main(common + ["--max-frames", "1"]) == 0
    assert f"resuming: {len(finished)} finished frame(s)" in capsys.readouterr().err


def test_mp4_keeps_audio_and_gif_and_multipass(tmp_path, style):
    clip = make_clip(tmp_path / "clip.mp4", frames=5, size=(48, 32))
    source = probe(clip)
    out = tmp_path / "styled.mp4"
    assert main(["-c", str(clip), "-s", str(style), "-o", str(out), "-z", "32", "-i", "5,3", "--passes", "2",
                 "--long-term", "1,2", *FAST]) == 0
    result = probe(out)
    assert result["frames"] == 5 and (result["width"], result["height"]) == (32, 22)
    assert result["audio_codec"] == "aac"
    assert abs(result["audio_seconds"] - source["audio_seconds"]) < 0.05
    assert result["seconds"] == pytest.approx(source["seconds"], abs=1e-3)
    work = Path(f"{out}.work")
    assert len(list((work / "pass2").glob("*.png"))) == 5
    assert len(list((work / "flow").glob("*.npz"))) == 2 * (4 + 3)  # pairs at distance 1 and 2, both directions

    gif = tmp_path / "styled.gif"  # same work folder: nothing recomputed, only written again as GIF
    assert main(["-c", str(clip), "-s", str(style), "-o", str(gif), "--work-dir", str(work), "-z", "32", "-i", "5,3",
                 "--passes", "2", "--long-term", "1,2", *FAST]) == 0
    assert probe(gif)["frames"] == 5
    assert len((work / "frames.jsonl").read_text().splitlines()) == 10


def test_gif_input(tmp_path, style):
    gif = make_clip(tmp_path / "anim.gif", frames=3, size=(32, 24), codec="gif", pix_fmt="rgb8", audio=False)
    out = tmp_path / "anim_styled.gif"
    assert main(["-c", str(gif), "-s", str(style), "-o", str(out), "-i", "3", "-z", "32", *FAST]) == 0
    assert probe(out)["frames"] == 3


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "fragments"), [
    (["-c", "{tmp}/nope.mp4"], ["not found", "nope.mp4"]),
    (["-s", "{tmp}/missing.jpg"], ["style image not found", "missing.jpg"]),
    (["-s", "{tmp}/text.jpg"], ["cannot read style image", "text.jpg"]),
    (["--style-blend-weights", "0.5", "0.5"], ["2 values for 1 style"]),
    (["-z", "4"], ["too small"]),
    (["-i", "0"], ["at least 1"]),
    (["--long-term", "2,4"], ["must include 1"]),
    (["--style-layers", "relu9_9"], ["unknown vgg layer", "relu9_9"]),
    (["-o", "{tmp}/out.mp4"], ["still image"]),
    (["-o", "{tmp}/out.xyz"], ["unsupported output type"]),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], ["device"]),
    (["--loss-net", "imagenet", "--vgg-weights", "{tmp}/none.pth"], ["weights file not found"]),
    (["--loss-net", "magenta", "--vgg-weights", "{tmp}/none.pth"], ["contradict"]),
    (["--loss-net", "magenta", "--style-layers", "relu1_1"], ["unknown mobilenetv2 layer", "relu1_1"]),
])
def test_bad_input_is_one_error_line(tmp_path, style, capsys, extra, fragments):
    content = save(tmp_path / "photo.png", texture(24, 24))
    (tmp_path / "text.jpg").write_text("not an image\n")
    args = ["-c", str(content), "-s", str(style), "-o", str(tmp_path / "o.png"), "-z", "24", "-i", "1", *FAST]
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    for flag in ("-c", "-s", "-o"):  # an override replaces the default of the same flag
        if flag in extra:
            where = args.index(flag)
            del args[where:where + 2]
    try:
        code = main([*args, *extra])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), errors[0]
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(("change", "fragment"), [
    ({"iters": (0, 5)}, "at least 1"), ({"styles": []}, "no style image"), ({"tv_weight": -1.0}, "0 or more"),
    ({"long_term": [2]}, "must include 1"), ({"style_blend_weights": [1.0, 2.0]}, "2 values for 1 style"),
])
def test_a_python_caller_gets_the_command_lines_checks(change, fragment):
    from dataclasses import replace

    from nstream.errors import NStreamError
    from nstream.optimize.config import OfflineConfig

    with pytest.raises(NStreamError, match=fragment):
        replace(OfflineConfig(content="a.mp4", styles=["s.jpg"]), **change).validate()


def test_command_line_error_has_no_traceback(tmp_path, style):
    """The real entry point, as a user runs it."""
    result = subprocess.run([sys.executable, str(ROOT / "offline.py"), "-c", str(tmp_path / "none.png"), "-s", str(style),
                             "--loss-net", "random"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert_one_line_error(result, "not found", "none.png")
