"""An independent measure of how much a picture looks like its painting: the style predictor's embedding.

Magenta's style predictor (a MobileNetV2 trained from ImageNet, then to describe paintings) maps a
picture to 100 numbers. With e(x) that vector divided by its length,

    fidelity = |e(output) - e(painting)| / |e(photo) - e(painting)|

is 1.0 for an output no closer to the painting than the photo itself, and 0 for one the predictor
cannot tell from the painting. It knows nothing of the loss networks our own styles were trained
with, so it can judge them and the Magenta networks alike (lower is better).
"""

from __future__ import annotations

import numpy as np


def embedding(image: np.ndarray) -> np.ndarray:
    """The predictor's style vector of an HxWx3 uint8 image, unit length."""
    from nstream.models.style_spec import predict_vector

    vector = predict_vector(image).astype(np.float64)
    return vector / np.linalg.norm(vector)


def fidelity(output: np.ndarray, photo: np.ndarray, painting: np.ndarray) -> float:
    """How far the output still is from the painting, relative to the photo's distance (lower: closer)."""
    target = embedding(painting)
    return float(np.linalg.norm(embedding(output) - target) / np.linalg.norm(embedding(photo) - target))
