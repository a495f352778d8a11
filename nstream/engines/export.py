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

from nstream.engines.graph_engine import INPUT, OUTPUT, STYLE
from nstream.errors import NStreamError
from nstream.models.lite_graph import for_graph

OPSET = 17
# INPUT, OUTPUT, STYLE: the graphs' tensor names (STYLE: a conditioned network's (1, D) style vector, so styles
# switch without a new graph), defined with the PyTorch-free engine that runs shipped graphs.
# Concat and Mul (lite's input-guided head), DepthToSpace (lite's folded head, johnson_deconv), ConvTranspose, and
# Gemm/MatMul, Unsqueeze, Sigmoid (the conditioned networks' style-to-norm maps and output) are
# standard TensorRT ONNX-parser ops too.
ALLOWED_OPS = frozenset({"Conv", "InstanceNormalization", "Relu", "Resize", "Pad", "Add", "Mul", "Concat",
                         "DepthToSpace", "ConvTranspose", "Gemm", "MatMul", "Unsqueeze", "Sigmoid"})
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
# Ops the fp16 graph keeps in fp32: instance norm sums squares of activations that overflow fp16.
FP32_OPS = frozenset({"InstanceNormalization"})


def style_dim(model: nn.Module) -> int | None:
    """The length of a conditioned network's style vector; None for a network of one style."""
    return getattr(model, "style_dim", None)


def check_styles(model: nn.Module, count: int) -> list[np.ndarray | None]:
    """A style input for each of ``count`` check or calibration frames: the network's reference styles in
    turn (conditioned networks), or None."""
    if style_dim(model) is None:
        return [None] * count
    references = model.reference_styles.detach().to("cpu", torch.float32).numpy()
    return [references[i % len(references)][None].copy() for i in range(count)]


def export_onnx(model: nn.Module, path: str | Path | None = None, opset: int = OPSET) -> onnx.ModelProto:
    """Export ``model`` (NCHW float 0..255 in and out) with symbolic height/width, folded and checked.

    A conditioned network gets its style vector as a second input (``STYLE``, shape 1 x D)."""
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    sample = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
    args: tuple[torch.Tensor, ...] = (sample,)
    names = [INPUT]
    if style_dim(net) is not None:
        args, names = (sample, torch.from_numpy(check_styles(net, 1)[0])), [INPUT, STYLE]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation of the TorchScript exporter, instance-norm train flag
        torch.onnx.export(for_graph(net), args, buffer, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=names, output_names=[OUTPUT],
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
    which the ONNX spec requires to be float. A style input is cast to fp16 like the pixels.
    """
    graph = copy.deepcopy(graph)
    g = graph.graph
    inits = {init.name: init for init in g.initializer}
    halves = {node.input[i] for node in g.node if node.op_type in WEIGHTED_OPS for i in (1, 2)
              if i < len(node.input) and node.input[i] in inits}
    for name in halves:
        init = inits[name]
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name))
    inputs = [i.name for i in g.input if i.name in (INPUT, STYLE)]
    nodes = [helper.make_node("Cast", [name], [name + "_fp16"], to=TensorProto.FLOAT16, name=f"cast_{name}")
             for name in inputs]
    for node in g.node:
        node.input[:] = [name + "_fp16" if name in inputs else name for name in node.input]
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
