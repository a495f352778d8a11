"""The engines' shared interface: resolve_precision's table, the reason given at construction, close(),
explicit keyword options, one device picker, and backends that depend on the shared build layer only.

TensorRT and torch2trt cannot run here: their constructors are checked by signature, not run.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from nstream.devices import pick_device
from nstream.engines import create_engine, resolve_precision
from nstream.engines.graph_engine import GraphEngine
from nstream.engines.onnxrt import OnnxRuntimeEngine
from nstream.engines.torch2trt_engine import Torch2TRTEngine
from nstream.engines.torch_engine import TorchEngine
from nstream.engines.trt_engine import TensorRTEngine
from nstream.errors import NStreamError
from nstream.models.checkpoints import load_style_model

CHECK = (64, 36)
ENGINE_CLASSES = (TorchEngine, OnnxRuntimeEngine, GraphEngine, TensorRTEngine, Torch2TRTEngine)
BACKENDS = ("torch_engine", "onnxrt", "graph_engine", "trt_engine", "torch2trt_engine")


@pytest.fixture(scope="module")
def model(style_model: Path) -> torch.nn.Module:
    return load_style_model(style_model)[0]


@pytest.mark.parametrize("engine,device,asked,expected", [
    ("torch", "cpu", "auto", "fp32"), ("torch", "cuda", "auto", "fp16"), ("torch", "cuda", "fp32", "fp32"),
    ("onnxruntime", "cpu", "auto", "fp32"), ("onnxruntime", "cuda:0", "auto", "fp16"),
    ("onnxruntime", "cpu", "int8", "int8"), ("onnxruntime", "cpu", "fp16", "fp16"),
    ("tensorrt", "cuda", "auto", "fp16"), ("tensorrt", "cuda", "int8", "int8"), ("tensorrt", "cpu", "auto", "fp16"),
    ("torch2trt", "cuda", "auto", "fp16"), ("torch2trt", "cuda", "fp32", "fp32"),
])
def test_resolve_precision_table(engine: str, device: str, asked: str, expected: str) -> None:
    assert resolve_precision(engine, device, asked) == expected
    assert resolve_precision(engine, torch.device(device), asked) == expected


@pytest.mark.parametrize("engine,device,asked,message", [
    ("torch", "cpu", "int8", "torch engine runs fp32 or fp16, not 'int8'"),
    ("torch", "cpu", "fp16", "fp16 needs a CUDA GPU"),
    ("torch2trt", "cuda", "int8", "torch2trt engine runs fp32 or fp16"),
    ("onnxruntime", "cpu", "fp8", "unknown --precision"),
    ("tflite", "cpu", "auto", "unknown --engine"),
])
def test_resolve_precision_refuses_what_an_engine_cannot_run(engine: str, device: str, asked: str, message: str) -> None:
    with pytest.raises(NStreamError, match=message):
        resolve_precision(engine, device, asked)


def test_every_engine_takes_reason_and_options_by_keyword_and_has_close() -> None:
    for cls in ENGINE_CLASSES:
        parameters = inspect.signature(cls.__init__).parameters
        assert parameters["reason"].kind is inspect.Parameter.KEYWORD_ONLY, cls.__name__
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()), cls.__name__
        assert callable(getattr(cls, "close", None)), cls.__name__
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(create_engine).parameters.values())


def test_reason_is_given_at_construction(model: torch.nn.Module, tmp_path: Path) -> None:
    asked = create_engine("torch", model, "cpu", "fp32")
    assert asked.reason == "asked for"
    auto = create_engine("auto", model, "cpu", cache=tmp_path, check_size=CHECK)
    assert "CPU" in auto.reason and "fp32" in auto.reason  # why this engine, and why this precision
    assert TorchEngine(model, "cpu", reason="a test's own").reason == "a test's own"
    graph = GraphEngine(auto.build.path, reason="light install")
    assert graph.reason == "light install"
    for engine in (asked, auto, graph):
        engine.close()


@pytest.mark.slow
def test_close_releases_and_is_idempotent(model: torch.nn.Module, tmp_path: Path) -> None:
    frame = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 64)).astype(np.float32)
    ort = create_engine("onnxruntime", model, "cpu", "fp32", cache=tmp_path, check_size=CHECK)
    engines = [create_engine("torch", model, "cpu", "fp32"), ort, GraphEngine(ort.build.path)]
    for engine in engines:
        assert engine.infer(frame).shape == frame.shape
        engine.close()
        engine.close()
        with pytest.raises(NStreamError, match="closed"):
            engine.infer(frame)
    assert ort.session is None and ort.graph is None and engines[0].model is None


def test_one_device_picker() -> None:
    """nstream/devices.py is the only place that turns a --device name into a torch device."""
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NStreamError, match="unknown --device"):
        pick_device("gpu0")
    with pytest.raises(NStreamError, match="unsupported --device"):
        pick_device("meta")
    package = Path(__file__).resolve().parent.parent / "nstream"
    pickers = [path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if re.search(r"torch\.device\(\s*(name|device|args\.device|config\.device)\b", path.read_text())]
    assert pickers == ["devices.py"], pickers
    if not torch.cuda.is_available():
        with pytest.raises(NStreamError, match="no CUDA GPU"):
            pick_device("cuda")


def test_backends_depend_on_the_shared_layer_never_on_each_other() -> None:
    folder = ROOT / "nstream" / "engines"
    for backend in BACKENDS:
        tree = ast.parse((folder / f"{backend}.py").read_text())
        imported = {node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nstream.engines.")}
        others = imported & set(BACKENDS) - {backend, "graph_engine"}
        assert not others, f"{backend} imports the backend(s) {sorted(others)}"
