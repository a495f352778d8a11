"""The loss networks and the loss terms that training and the offline optimizer share (CPU, tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from nstream.errors import NStreamError
from nstream.losses import PerceptualLoss, gram_matrix, style_grams, swag, total_variation
from nstream.lossnet import build_encoder


def image(seed: int, size: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_magenta_encoder_runs_only_as_deep_as_the_deepest_layer_asked_for() -> None:
    encoder = build_encoder("magenta", ["stem", "block3"])
    assert encoder.names == ["stem", "block1", "block2", "block3"]  # truncated: nothing after block3 runs
    features = encoder(image(0, 64))
    assert set(features) == {"stem", "block3"}
    assert features["stem"].shape == (1, 32, 32, 32) and features["block3"].shape == (1, 24, 16, 16)
    assert not any(p.requires_grad for p in encoder.parameters())


def test_magenta_encoder_is_the_style_predictors_own_network() -> None:
    from nstream.models.style_spec import pretrained

    predictor, _ = pretrained("magenta_predictor")
    x = image(1, 64)
    with torch.no_grad():
        expected = predictor.blocks(predictor.stem(x))  # the predictor takes 0..255 and divides by 255 first
        ours = build_encoder("magenta", ["block17"])(x)["block17"]
    assert torch.allclose(ours, expected, atol=1e-5)


def test_unknown_magenta_layer_and_vgg_weights_are_refused() -> None:
    with pytest.raises(NStreamError, match="unknown MobileNetV2 layer 'relu4_2'"):
        build_encoder("magenta", ["relu4_2"])
    with pytest.raises(NStreamError, match="--vgg-weights"):
        build_encoder("magenta", ["stem"], weights_file="vgg.pth")


@pytest.mark.parametrize("over", ["layer", "positions"])
def test_swag_flattens_peaks_into_a_distribution_of_mean_one(over: str) -> None:
    features = torch.zeros(1, 4, 8, 8)
    features[0, 1, 3, 3] = 5.0  # one peaky activation
    smoothed = swag(features, over)
    assert (smoothed > 0).all()
    mean = smoothed.mean() if over == "layer" else smoothed.mean(dim=(2, 3))
    assert torch.allclose(mean, torch.ones_like(mean))
    assert torch.equal(swag(features, "none"), features)


def test_training_and_the_optimizer_compute_the_same_terms() -> None:
    """One definition: the optimizer's objective and the training loss see the same content and
    style numbers for the same image; only the TV term differs on purpose (squared against absolute)."""
    from nstream.optimize.losses import GatysLoss, LossWeights
    from nstream.train import TrainingLoss

    encoder = build_encoder("random", ["relu1_1", "relu2_1", "relu2_2"], "vgg16", seed=0)
    style, content, x = image(2), image(3), image(4)
    trainer = TrainingLoss(encoder, style, {"content": 1.0, "style": 1.0, "tv": 1.0}, ["relu2_2"], ["relu1_1", "relu2_1"])
    optimizer = GatysLoss(encoder, ["relu2_2"], ["relu1_1", "relu2_1"], LossWeights(content=1, style=1, tv=1, temporal=0))
    optimizer.set_targets(content, style_grams(encoder, [style], [1.0], ["relu1_1", "relu2_1"]))
    trained = trainer(x, content)
    _, terms = optimizer(x)
    assert float(trained["content"]) == pytest.approx(terms["content"], rel=1e-6)
    assert float(trained["style"]) == pytest.approx(terms["style"], rel=1e-6)
    assert float(trained["tv"]) == pytest.approx(float(total_variation(x, power=1)), rel=1e-6)
    assert terms["tv"] == pytest.approx(float(total_variation(x, power=2)), rel=1e-6)


def test_style_terms_of_a_batch_are_the_mean_of_its_images() -> None:
    encoder = build_encoder("magenta", ["block1"])
    loss = PerceptualLoss(encoder, [], ["block1"])
    loss.set_style({"block1": gram_matrix(swag(encoder(image(5))["block1"]))})
    a, b = image(6), image(7)
    both = loss.terms(torch.cat([a, b]), torch.cat([a, b]))["style"]
    single = (loss.terms(a, a)["style"] + loss.terms(b, b)["style"]) / 2
    assert float(both) == pytest.approx(float(single), rel=1e-5)


def test_eval_style_fidelity_through_magenta() -> None:
    import numpy as np

    from nstream.temporal.metrics import StyleFidelity

    rng = np.random.default_rng(0)
    painting = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    flat = np.full_like(painting, 128)
    judge = StyleFidelity(painting, loss_net="magenta", size=64)
    assert judge([painting]) < 1e-6 < judge([flat])
