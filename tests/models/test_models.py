"""Model construction from specs: shapes, the A1/E1 architectures, and config errors."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import MODELS
from replab.models.init import initialise
from replab.spec import Component, ModelSpec
from replab.tasks.autoencode import Autoencode
from replab.tasks.classify import Classify


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_a1_mnist_mlp_autoencoder():
    spec = ModelSpec(
        encoder=Component(name="mlp", hidden=[256], latent_dim=128),
        decoder=Component(name="mlp_decoder", hidden=[256]),
    )
    task = Autoencode.from_spec(spec, Component(name="l1"), (1, 28, 28), 10)
    x = torch.rand(4, 1, 28, 28)
    assert task.model.encoder(x).shape == (4, 128)
    out = task.model(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1  # sigmoid output
    # 784*256+256 + 256*128+128, and the mirror
    assert n_params(task.model.encoder) == 784 * 256 + 256 + 256 * 128 + 128
    assert n_params(task.model.decoder) == 128 * 256 + 256 + 256 * 784 + 784


def test_a1_cifar_conv_autoencoder_mirrors_encoder():
    spec = ModelSpec(
        encoder=Component(name="conv", latent_dim=128), decoder=Component(name="conv_decoder")
    )
    task = Autoencode.from_spec(spec, Component(name="l1"), (3, 32, 32), 10)
    assert task.model.encoder.feature_shape == (256, 4, 4)
    assert task.model(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_e1_fashion_conv_autoencoder_of_report_003():
    enc = Component(
        name="conv",
        channels=[8, 16, 32],
        kernels=[4, 4, 3],
        paddings=[1, 1, 0],
        hidden=[64],
        latent_dim=10,
        dropout=0.2,
    )
    task = Autoencode.from_spec(
        ModelSpec(encoder=enc, decoder=Component(name="conv_decoder", dropout=0.2)),
        Component(name="mse"),
        (1, 28, 28),
        10,
    )
    assert task.model.encoder.feature_shape == (32, 3, 3)  # table 1: n x 32 x 3 x 3 -> 288
    assert task.model(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_classifier_with_mlp_head():
    spec = ModelSpec(
        encoder=Component(name="mlp", hidden=[256], latent_dim=128),
        head=Component(name="mlp_head", hidden=[64], dropout=0.5),
    )
    task = Classify.from_spec(spec, Component(name="cross_entropy"), (1, 28, 28), 10)
    metrics = task.step(torch.rand(5, 1, 28, 28), torch.randint(0, 10, (5,)))
    assert set(metrics) == {"loss", "accuracy"} and metrics["loss"].requires_grad


def test_unknown_model_and_params_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'mlpp'.*mlp"):
        MODELS.build("mlpp", {}, where="model.encoder")
    with pytest.raises(ConfigError, match="unknown key.*'widths'.*valid keys are.*hidden"):
        MODELS.build("mlp", {"widths": [3]}, where="model.encoder", in_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="latent_dim"):
        MODELS.build("mlp", {"latent_dim": "big"}, where="model.encoder", in_shape=(1, 8, 8))


def test_decoder_that_cannot_reach_the_image_shape():
    spec = ModelSpec(
        encoder=Component(name="conv"), decoder=Component(name="conv_decoder", paddings=0)
    )
    with pytest.raises(ConfigError, match="produces images of shape"):
        Autoencode.from_spec(spec, Component(name="l1"), (3, 32, 32), 10)


def test_objective_must_fit_the_task():
    spec = ModelSpec(encoder=Component(name="mlp"), decoder=Component(name="mlp_decoder"))
    with pytest.raises(ConfigError, match="does not fit this task.*l1"):
        Autoencode.from_spec(spec, Component(name="cross_entropy"), (1, 8, 8), 10)


def test_kaiming_init_gives_he_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(400, 300), torch.nn.ReLU(), torch.nn.Conv2d(3, 200, 5)
    )
    default_std = net[0].weight.std().item()
    initialise(net, "default")
    assert net[0].weight.std().item() == default_std  # untouched
    initialise(net, "kaiming")
    # He: sqrt(2 / fan_in), 2.4x PyTorch's default
    assert abs(net[0].weight.std().item() - (2 / 400) ** 0.5) < 0.003
    assert abs(net[2].weight.std().item() - (2 / 75) ** 0.5) < 0.01
    assert not net[0].bias.any() and not net[2].bias.any()
    with pytest.raises(ValueError, match="init"):
        ModelSpec(encoder=Component(name="mlp"), init="xavier")
