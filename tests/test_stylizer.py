"""The stylize stage: any frame size in, the same size out; strength and colour preservation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import moving_pattern
from nstream.colors import rgb_to_ycbcr
from nstream.engines import TorchEngine
from nstream.models.johnson import TransformerNet
from nstream.stylizer import Stylizer, pad_to_multiple, padded_size


@pytest.fixture(scope="module")
def engine() -> TorchEngine:
    torch.manual_seed(1)
    model = TransformerNet()
    with torch.no_grad():  # spread the untrained net's output over the pixel range
        model.deconv3.conv2d.weight.mul_(400.0)
        model.deconv3.conv2d.bias.fill_(128.0)
    return TorchEngine(model, "cpu", "fp32")


@pytest.mark.parametrize("size", [(175, 143), (64, 48), (5, 7), (33, 4)])
def test_output_has_the_input_size(engine, size):
    width, height = size
    image = moving_pattern(0, width, height)
    out = Stylizer(engine)(image)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_padding_reflects_and_crops_back():
    x = np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7)
    padded, h, w = pad_to_multiple(x, minimum=8)
    assert padded.shape[-2:] == (8, 8) and (h, w) == (5, 7)
    assert np.array_equal(padded[..., :5, :7], x)
    assert np.array_equal(padded[..., 5, :7], x[..., 3, :])  # reflection, not zeros
    assert padded_size(5, 7) == (24, 24) and padded_size(143, 175) == (144, 176)
    tiny, h, w = pad_to_multiple(x)  # below the minimum side: replicated up to it
    assert tiny.shape[-2:] == (24, 24) and np.array_equal(tiny[..., 23, 6], x[..., 4, 6])


def test_scale_and_size_run_smaller_and_come_back(engine):
    image = moving_pattern(0, 96, 64)
    for stylizer in (Stylizer(engine, scale=0.5), Stylizer(engine, size=(40, 20))):
        assert stylizer(image).shape == image.shape
    assert Stylizer(engine, scale=0.5).work_size(64, 96) == (32, 48)


def test_strength_zero_is_the_content_and_one_is_the_style(engine):
    image = moving_pattern(3, 64, 48)
    assert np.array_equal(Stylizer(engine, strength=0.0)(image), image)
    full, half = Stylizer(engine)(image).astype(int), Stylizer(engine, strength=0.5)(image).astype(int)
    assert np.abs(full - image).mean() > 10
    assert np.abs(half - (full + image) / 2).max() <= 1.0


def test_preserve_colors_keeps_the_input_chroma(engine):
    image = moving_pattern(5, 64, 48)
    styled = Stylizer(engine)(image)
    kept = Stylizer(engine, preserve_colors=True)(image)

    def chroma(a: np.ndarray) -> np.ndarray:
        return rgb_to_ycbcr(a)[..., 1:]

    def luma(a: np.ndarray) -> np.ndarray:
        return rgb_to_ycbcr(a)[..., 0]

    assert np.abs(chroma(kept) - chroma(image)).mean() < np.abs(chroma(styled) - chroma(image)).mean() / 3
    unclipped = ((kept > 0) & (kept < 255)).all(axis=2)
    assert unclipped.mean() > 0.3
    assert np.abs(luma(kept) - luma(styled))[unclipped].mean() < 2
