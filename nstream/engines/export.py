"""ONNX export with dynamic height and width: the common ground of ONNX Runtime and TensorRT.

PyTorch's TorchScript exporter spells reflection padding as a small subgraph that computes the
pad widths (Reshape, Slice, Transpose, Concat...). Those are constants, so we fold them; the
graph that remains uses only ops both backends map faithfully (``ALLOWED_OPS``).
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
from onnx.reference import ReferenceEvaluator
from torch import nn

from nstream.errors import NStreamError

OPSET = 17
INPUT, OUTPUT = "input", "output"
# Concat and Mul (lite's input-guided head), DepthToSpace and ConvTranspose (johnson_deconv) are
# standard TensorRT ONNX-parser ops too.
ALLOWED_OPS = frozenset({"Conv", "InstanceNormalization", "Relu", "Resize", "Pad", "Add", "Mul", "Concat",
                         "DepthToSpace", "ConvTranspose"})
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose"})
# Ops the fp16 graph keeps in fp32: instance norm sums squares of activations that overflow fp16.
FP32_OPS = frozenset({"InstanceNormalization"})


def export_onnx(model: nn.Module, path: str | Path | None = None, opset: int = OPSET) -> onnx.ModelProto:
    """Export ``model`` (NCHW float 0..255 in and out) with symbolic height/width, folded and checked."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    sample = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation of the TorchScript exporter, instance-norm train flag
        torch.onnx.export(net, (sample,), buffer, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {2: "height", 3: "width"}, OUTPUT: {2: "height", 3: "width"}})
    graph = fold_constants(onnx.load_from_string(buffer.getvalue()))
    unexpected = op_types(graph) - ALLOWED_OPS
    if unexpected:
        raise NStreamError(f"the exported graph uses ops TensorRT/ONNX Runtime may not map faithfully: {sorted(unexpected)}")
    onnx.checker.check_model(graph)
    if path is not None:
        save_onnx(graph, path)
    return graph


def save_onnx(graph: onnx.ModelProto, path: str | Path) -> Path:
    """Write atomically so an interrupted export never leaves a half graph behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(graph.SerializeToString())
    tmp.replace(path)
    return path


def op_types(graph: onnx.ModelProto) -> set[str]:
    """The set of op types in the main graph (what the export test checks)."""
    return {node.op_type for node in graph.graph.node}


def fold_constants(graph: onnx.ModelProto) -> onnx.ModelProto:
    """Evaluate every node whose inputs are all constants and keep its outputs as initializers."""
    graph = copy.deepcopy(graph)
    g = graph.graph
    values = {init.name: numpy_helper.to_array(init) for init in g.initializer}
    opsets = {op.domain or "": op.version for op in graph.opset_import}
    kept, renames = [], {}
    for node in g.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        if node.op_type == "Identity" and node.input[0] not in values:
            renames[node.output[0]] = node.input[0]  # a pass-through on a live tensor
            continue
        if all(name == "" or name in values for name in node.input):
            feeds = {name: values[name] for name in node.input if name}
            results = ReferenceEvaluator(node, opsets=opsets).run(None, feeds)
            values.update(zip(node.output, (np.asarray(r) for r in results), strict=True))
            continue
        kept.append(node)
    for out in g.output:
        if out.name in renames:
            raise NStreamError(f"graph output {out.name} is a bare alias; cannot fold it")
    used = {name for node in kept for name in node.input}
    del g.node[:]
    g.node.extend(kept)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(values[name], name) for name in sorted(used & values.keys()))
    del g.value_info[:]
    return graph


def to_fp16(graph: onnx.ModelProto) -> onnx.ModelProto:
    """An fp16 graph for strongly typed TensorRT: fp16 conv weights and activations, fp32 I/O.

    Instance normalization stays fp32 (casts around it), and so does Resize's ``scales`` input,
    which the ONNX spec requires to be float.
    """
    graph = copy.deepcopy(graph)
    g = graph.graph
    inits = {init.name: init for init in g.initializer}
    halves = {node.input[i] for node in g.node if node.op_type in WEIGHTED_OPS for i in (1, 2) if i < len(node.input)}
    for name in halves:
        init = inits[name]
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name))
    nodes = [helper.make_node("Cast", [INPUT], [INPUT + "_fp16"], to=TensorProto.FLOAT16, name="cast_in")]
    for node in g.node:
        node.input[:] = [INPUT + "_fp16" if name == INPUT else name for name in node.input]
        if node.op_type in FP32_OPS:
            x32, y32 = node.input[0] + "_fp32", node.output[0] + "_fp32"
            nodes.append(helper.make_node("Cast", [node.input[0]], [x32], to=TensorProto.FLOAT, name=node.name + "_up"))
            y16 = node.output[0]
            node.input[0], node.output[0] = x32, y32
            nodes.append(node)
            nodes.append(helper.make_node("Cast", [y32], [y16], to=TensorProto.FLOAT16, name=node.name + "_down"))
            continue
        node.output[:] = [OUTPUT + "_fp16" if name == OUTPUT else name for name in node.output]
        nodes.append(node)
    nodes.append(helper.make_node("Cast", [OUTPUT + "_fp16"], [OUTPUT], to=TensorProto.FLOAT, name="cast_out"))
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(graph)
    return graph
