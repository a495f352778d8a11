"""``python -m nstream export-bundled``: the ONNX graphs shipped beside the bundled networks.

The light install (no PyTorch) runs these through ONNX Runtime: every bundled ``lite`` and ``compact`` style,
Magenta's arbitrary-style network, the 26-style network and the style predictor. Each graph is
exported from its checkpoint, checked against it (PSNR over held-out frames, as every engine is;
the predictor's vectors to 1e-3), and written with its weights stored in float16: the checkpoints
hold float16 weights already, so nothing is lost, and ONNX Runtime folds the casts back to float32
when it loads the graph. Run it whenever a bundled checkpoint changes; a test fails if a shipped
graph and its checkpoint disagree.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nstream.engines.export import INPUT, OUTPUT, export_onnx, save_onnx
from nstream.engines.graph_engine import GraphEngine
from nstream.engines.graphs import gate, holdout_frames
from nstream.engines.quantize import calibration_dirs
from nstream.errors import NStreamError
from nstream.models.checkpoints import load_style_model
from nstream.models.registry import BUNDLED_DIR, list_styles, shipped_arch
from nstream.models.style_spec import GRAPH_SUFFIX, PREDICTOR_SIZE, PRETRAINED_DIR

SMALL = 1024  # initializers below this many numbers stay float32 (shapes, biases: not worth a cast)


def fp16_storage(graph: onnx.ModelProto) -> onnx.ModelProto:
    """Store every large float32 initializer that float16 holds exactly as float16, behind a Cast back to
    float32 (weights computed at export, like lite's folded head, stay float32)."""
    graph = copy.deepcopy(graph)
    g = graph.graph
    casts, kept = [], []
    for init in g.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < SMALL or not np.array_equal(value.astype(np.float16), value):
            kept.append(init)
            continue
        kept.append(numpy_helper.from_array(value.astype(np.float16), init.name + "_fp16"))
        casts.append(helper.make_node("Cast", [init.name + "_fp16"], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "_cast"))
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(graph)
    return graph


def export_predictor(model: nn.Module) -> onnx.ModelProto:
    """The style predictor at its fixed 256x256 input (CPU only: no TensorRT op list to keep to)."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, PREDICTOR_SIZE, PREDICTOR_SIZE),), buffer, dynamo=False,
                          opset_version=17, do_constant_folding=True, input_names=[INPUT], output_names=[OUTPUT])
    graph = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(graph)
    return graph


def with_arch(graph: onnx.ModelProto, arch: str) -> onnx.ModelProto:
    helper.set_model_props(graph, {"nstream_arch": arch})
    return graph


def bundled_networks() -> list[tuple[Path, str]]:
    """(checkpoint, architecture) of every network the light install runs."""
    found = []
    for entry in list_styles():
        arch = shipped_arch(entry.name)
        if entry.origin == "bundled" and entry.path.parent == BUNDLED_DIR and arch:
            found.append((entry.path, arch))
    for name, arch in (("magenta_arbitrary", "magenta"), ("tf26", "tf26"), ("magenta_predictor", "magenta_predictor")):
        found.append((PRETRAINED_DIR / f"{name}.safetensors", arch))
    return found


def check_predictor(model: nn.Module, engine: GraphEngine) -> float:
    """Worst relative error of the graph's style vectors against the network's, on held-out frames."""
    worst = 0.0
    for frame in holdout_frames(calibration_dirs(None)[1], (PREDICTOR_SIZE, PREDICTOR_SIZE)):
        with torch.inference_mode():
            want = model(torch.from_numpy(frame)).numpy()
        got = engine.infer(frame)
        worst = max(worst, float(np.linalg.norm(got - want) / np.linalg.norm(want)))
    if worst > 1e-3:
        raise NStreamError(f"the predictor's ONNX graph differs from PyTorch: vectors {worst:.1e} apart")
    return worst


def write_graph(checkpoint: Path, arch: str) -> tuple[Path, str]:
    """Export, check and write the graph beside ``checkpoint``; returns it and what the check measured."""
    model, _ = load_style_model(checkpoint)
    graph = export_predictor(model) if arch == "magenta_predictor" else export_onnx(model)
    graph = with_arch(fp16_storage(graph), arch)
    engine = GraphEngine(graph.SerializeToString())
    if arch == "magenta_predictor":
        measured = f"vectors within {check_predictor(model, engine):.1e}"
    else:
        frames = holdout_frames(calibration_dirs(None)[1], (256, 144))
        psnr = gate(engine.infer, model, "fp32", f"the shipped graph of {checkpoint.name}", frames)
        measured = f"PSNR {psnr:.1f} dB"
    engine.close()
    return save_onnx(graph, checkpoint.with_suffix(GRAPH_SUFFIX)), measured


def write_bundled_graphs() -> list[tuple[Path, str]]:
    return [write_graph(checkpoint, arch) for checkpoint, arch in bundled_networks()]


def run(_args: object = None) -> None:
    for path, measured in write_bundled_graphs():
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; against its checkpoint: {measured})")
