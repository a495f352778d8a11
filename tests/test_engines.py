"""Engines: ONNX export, ONNX Runtime (fp32/fp16/int8), the engine cache, the PSNR gate, CLI export/bench.

TensorRT and torch2trt cannot run on the project's machines: their tests skip with the reason,
and the tests here check what can run (the same ONNX graphs through ONNX Runtime).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from conftest import ROOT
from nstream.engines import create_engine
from nstream.engines.cache import CacheKey, EngineCache
from nstream.engines.export import ALLOWED_OPS, INPUT, OUTPUT, export_onnx, op_types
from nstream.engines.graph_engine import cpu_session
from nstream.engines.onnxrt import validated_graph
from nstream.engines.quantize import calibration_dirs
from nstream.engines.validate import check_engine, psnr
from nstream.errors import NStreamError
from nstream.models.checkpoints import load_style_model, save_style
from nstream.stylizer import Stylizer

CHECK = (64, 36)  # (W, H) of held-out/calibration frames in tests: small, multiples of 4
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_T2T = importlib.util.find_spec("torch2trt") is not None
NO_TRT = "needs TensorRT and a CUDA GPU (absent on this project's machines)"
NO_T2T = "needs torch2trt and a CUDA GPU (absent on this project's machines)"


def lively(model: torch.nn.Module) -> torch.nn.Module:
    """A seeded random Johnson net's output is ~0.3 grey levels wide; widen it to ~0..255 so PSNR means something."""
    with torch.no_grad():
        model.deconv3.conv2d.weight.mul_(150.0)
        model.deconv3.conv2d.bias.fill_(128.0)
    return model


@pytest.fixture(scope="module")
def model(style_model: Path) -> torch.nn.Module:
    return lively(load_style_model(style_model)[0])


@pytest.fixture(scope="module")
def lively_style(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_style(tmp_path_factory.mktemp("lively") / "lively.pth", model, "johnson", {"name": "lively"})


def test_output_is_not_trivial(model: torch.nn.Module) -> None:
    with torch.no_grad():
        y = model(torch.rand(1, 3, 36, 64) * 255)
    assert y.std() > 20, "the PSNR checks below would pass for any engine"


def test_export_uses_only_portable_ops(model: torch.nn.Module, tmp_path: Path) -> None:
    graph = export_onnx(model, tmp_path / "m.onnx")
    assert op_types(graph) <= ALLOWED_OPS
    assert {"Conv", "InstanceNormalization", "Pad", "Resize"} <= op_types(graph)
    attrs = {(n.op_type, a.name): a.s.decode() for n in graph.graph.node for a in n.attribute
             if a.type == onnx.AttributeProto.STRING}
    assert attrs[("Pad", "mode")] == "reflect" and attrs[("Resize", "mode")] == "nearest"
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[2:] == ["height", "width"]
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node


@pytest.mark.parametrize("height,width", [(68, 52), (100, 36), (44, 120)])
def test_onnxruntime_matches_pytorch_at_odd_sizes(model: torch.nn.Module, height: int, width: int) -> None:
    session = cpu_session(export_onnx(model).SerializeToString())
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height)) * 255
    with torch.no_grad():
        ref = model(x).numpy()
    out = session.run([OUTPUT], {INPUT: x.numpy()})[0]
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 0.05  # grey levels, of a 0..255 output
    assert psnr(ref, out) > 60
    options = session.get_session_options()  # the pipeline's scheduling settings (see cpu_session)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.dynamic_block_base") == "4"


def test_stylizer_through_onnxruntime_pads_and_crops(model: torch.nn.Module, tmp_path: Path) -> None:
    engine = create_engine("onnxruntime", model, "cpu", "fp32", cache=tmp_path, check_size=CHECK)
    assert engine.name == "onnxruntime" and engine.precision == "fp32" and engine.psnr > 40
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd: padded to 40x56
    ours, reference = Stylizer(engine)(image), Stylizer(create_engine("torch", model, "cpu", "fp32"))(image)
    assert ours.shape == image.shape
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


def test_threads_caps_torch_and_onnxruntime(model: torch.nn.Module, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        engine = create_engine("onnxruntime", model, "cpu", "fp32", cache=tmp_path, check_size=CHECK, threads=1)
        assert engine.session.get_session_options().intra_op_num_threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(NStreamError, match="--threads 0"):
        create_engine("torch", model, "cpu", "fp32", threads=0)


@pytest.mark.slow
def test_cache_reuses_rebuilds_on_key_change_and_on_corruption(model: torch.nn.Module, tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    first = validated_graph(model, "fp32", cache, check_size=CHECK)
    assert first.cache_status == "miss" and first.path.is_file()
    again = validated_graph(model, "fp32", cache, check_size=CHECK)
    assert again.cache_status == "hit" and again.path == first.path

    changed = lively(load_style_model_copy(model))  # other weights: another model hash
    other = validated_graph(changed, "fp32", cache, check_size=CHECK)
    assert other.cache_status == "miss" and other.path != first.path

    first.path.write_bytes(first.path.read_bytes()[:1000])  # a truncated graph on disk
    rebuilt = validated_graph(model, "fp32", cache, check_size=CHECK)
    assert rebuilt.cache_status.startswith("corrupt") and "checksum" in rebuilt.cache_status
    assert onnx.load(str(rebuilt.path)).graph.node  # a whole graph again
    assert validated_graph(model, "fp32", cache, check_size=CHECK).cache_status == "hit"


def load_style_model_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.conv1.conv2d.bias.add_(1.0)
    return twin


def test_cache_key_fields_and_bad_meta(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    key = CacheKey("onnx", "abc", "fp32", "dynamic HxW", "v1", "cpu")
    cache.commit(key, "x.bin", b"data", {"psnr": 50.0})
    assert cache.fetch(key, "x.bin")[1] == "hit" and cache.info(key)["psnr"] == 50.0
    for field in ("model_hash", "precision", "shape_range", "backend_version", "device"):
        changed = CacheKey(**{**key.__dict__, field: "other"})
        assert cache.fetch(changed, "x.bin") == (None, "miss"), field
    (cache.entry(key) / "meta.json").write_text("{not json")
    path, status = cache.fetch(key, "x.bin")
    assert path is None and status.startswith("corrupt") and not cache.entry(key).exists()


def test_fp16_graph_passes_the_gate(model: torch.nn.Module, tmp_path: Path) -> None:
    build = validated_graph(model, "fp16", EngineCache(tmp_path), check_size=CHECK)
    graph = onnx.load(str(build.path))
    norms = [n for n in graph.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(n.input[0].endswith("_fp32") for n in norms)  # kept in fp32
    assert build.psnr >= 40


def test_int8_reaches_threshold_on_frames_it_was_not_calibrated_on(model: torch.nn.Module, tmp_path: Path) -> None:
    calib, holdout = calibration_dirs()
    assert not {p.name for p in calib.iterdir()} & {p.name for p in holdout.iterdir()}
    engine = create_engine("onnxruntime", model, "cpu", "int8", cache=tmp_path, check_size=CHECK)
    assert engine.precision == "int8" and engine.psnr >= 30
    graph = onnx.load(str(engine.build.path))
    producers = {out: n.op_type for n in graph.graph.node for out in n.output}
    assert "QuantizeLinear" in producers.values()
    norms = [n for n in graph.graph.node if n.op_type == "InstanceNormalization"]
    assert all(producers.get(n.input[0]) == "Conv" for n in norms)  # instance norm runs on fp32, not on DQ output
    out = engine.infer(torch.rand(1, 3, 40, 56) * 255)
    assert out.shape == (1, 3, 40, 56)


def test_gate_refuses_a_bad_engine() -> None:
    frames = [np.full((1, 3, 8, 8), 100.0, np.float32)]
    with pytest.raises(NStreamError, match="below the 30 dB"):
        check_engine(lambda x: x + 20.0, frames, frames, "int8", "a broken engine")
    assert check_engine(lambda x: x + 0.5, frames, frames, "fp32", "a fine engine") > 40


def test_int8_without_calibration_frames_is_one_clear_error(model: torch.nn.Module, tmp_path: Path) -> None:
    (tmp_path / "holdout").mkdir()
    with pytest.raises(NStreamError, match="no calibration images"):
        create_engine("onnxruntime", model, "cpu", "int8", cache=tmp_path, calibration=tmp_path, check_size=CHECK)


@pytest.mark.slow
def test_auto_on_cpu_prefers_onnxruntime_and_says_why(model: torch.nn.Module, tmp_path: Path) -> None:
    engine = create_engine("auto", model, "cpu", cache=tmp_path, check_size=CHECK)
    assert engine.name == "onnxruntime" and "CPU" in engine.reason


def test_unknown_engine_and_precision_are_user_errors(model: torch.nn.Module) -> None:
    with pytest.raises(NStreamError, match="unknown --engine"):
        create_engine("tflite", model, "cpu")
    with pytest.raises(NStreamError, match="torch engine runs fp32 or fp16"):
        create_engine("torch", model, "cpu", "int8")


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here; the missing-package message cannot be checked")
def test_tensorrt_missing_is_one_line(model: torch.nn.Module) -> None:
    with pytest.raises(NStreamError, match="TensorRT is not installed") as info:
        create_engine("tensorrt", model, "cpu")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(HAS_T2T, reason="torch2trt is installed here; the missing-package message cannot be checked")
def test_torch2trt_missing_is_one_line(model: torch.nn.Module) -> None:
    with pytest.raises(NStreamError, match="torch2trt is not installed"):
        create_engine("torch2trt", model, "cpu")


@pytest.mark.skipif(not (HAS_TRT and torch.cuda.is_available()), reason=NO_TRT)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_builds_checks_and_caches(model: torch.nn.Module, tmp_path: Path, precision: str) -> None:
    profile = ((32, 32), (64, 64), (128, 128))
    engine = create_engine("tensorrt", model, "cuda", precision, cache=tmp_path, check_size=CHECK, profile=profile)
    assert engine.psnr >= (30 if precision == "int8" else 40) and engine.cache_status == "miss"
    again = create_engine("tensorrt", model, "cuda", precision, cache=tmp_path, check_size=CHECK, profile=profile)
    assert again.cache_status == "hit"
    x = torch.rand(1, 3, 68, 52, device="cuda") * 255
    with torch.no_grad():
        ref = model.cuda()(x)
    assert psnr(ref.cpu().numpy(), again.infer(x).cpu().numpy()) >= (30 if precision == "int8" else 40)


@pytest.mark.skipif(not (HAS_T2T and torch.cuda.is_available()), reason=NO_T2T)
def test_torch2trt_matches_or_refuses(model: torch.nn.Module) -> None:
    engine = create_engine("torch2trt", model, "cuda", "fp16")
    try:
        engine.warmup(64, 64)
    except NStreamError as exc:
        assert "differs from PyTorch" in str(exc)
    else:
        assert engine.psnr >= 40


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NSTREAM_ENGINES": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "nstream", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
def test_cli_export_and_bench(lively_style: Path, tmp_path: Path) -> None:
    result = _cli("export", "--style", str(lively_style), "--engine", "onnxruntime", "--precision", "fp32",
                  "--check-size", "64x36", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PSNR" in result.stdout and list(tmp_path.glob("onnx-fp32-*/model.onnx"))
    out = tmp_path / "bench.json"
    result = _cli("bench", "--style", str(lively_style), "--engines", "torch,onnxruntime", "--precisions", "fp32",
                  "--resolutions", "64x36", "--iterations", "2", "--check-size", "64x36", "--json", str(out), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["results"]
    assert {r["engine"] for r in rows} == {"torch", "onnxruntime"} and all(r["fps"] > 0 for r in rows)


@pytest.mark.slow
def test_cli_export_tensorrt_without_it_is_one_line(lively_style: Path, tmp_path: Path) -> None:
    if HAS_TRT:
        pytest.skip("TensorRT is installed here")
    result = _cli("export", "--style", str(lively_style), "--engine", "tensorrt", "--precision", "fp16", cache=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if "TensorRT is not installed" in line]


def test_cost_count_matches_the_architecture() -> None:
    from nstream.bench import count_cost
    from nstream.models.johnson import TransformerNet

    per_pixel = (3 * 32 * 81 + 32 * 64 * 9 / 4 + 64 * 128 * 9 / 16 + 10 * 128 * 128 * 9 / 16  # down, residual
                 + 128 * 64 * 9 / 4 + 64 * 32 * 9 + 32 * 3 * 81)  # up
    cost = count_cost(TransformerNet().eval(), 16, 32)
    assert cost["gflops"] * 1e9 == pytest.approx(2 * 16 * 32 * per_pixel)
    assert cost["conv_io_elements"] < cost["activation_elements"]
