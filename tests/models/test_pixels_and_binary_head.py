"""The pixels encoder and the one-score linear head: study D's linear
SVM, built from its recipes."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import MODELS
from replab.recipes import load_spec
from replab.tasks import build_task

SHAPE = (3, 32, 32)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_pixels_encoder_flattens_and_has_no_parameters():
    enc = MODELS.build("pixels", {}, where="test", in_shape=SHAPE)
    x = torch.rand(4, *SHAPE)
    assert enc.latent_dim == 3072 and n_params(enc) == 0
    assert torch.equal(enc(x), x.flatten(1))


@pytest.mark.parametrize("recipe", ["d1-cifar10-svm", "d2-cifar10-svm-tuned"])
def test_svm_recipes_build_a_3073_parameter_model_with_one_score(recipe):
    task = build_task(load_spec(recipe), SHAPE, 2)
    assert n_params(task.model) == 3073
    assert task.model(torch.rand(5, *SHAPE)).shape == (5, 1)


def test_one_score_accuracy_reads_positive_as_the_second_class():
    task = build_task(load_spec("d1-cifar10-svm"), SHAPE, 2)
    with torch.no_grad():
        task.model.head.net.weight.zero_()
        task.model.head.net.bias.fill_(1.0)  # every score +1: every image called class 1
    out = task.step(torch.rand(4, *SHAPE), torch.tensor([1, 1, 0, 1]))
    assert out["accuracy"].item() == 0.75
    # hinge: margin met for the three 1s, 2 for the 0: C * 2/4
    assert out["loss"].item() == pytest.approx(0.5)


def test_binary_head_needs_two_classes():
    with pytest.raises(ConfigError, match="needs exactly 2 classes"):
        build_task(load_spec("d1-cifar10-svm"), SHAPE, 10)


@pytest.mark.parametrize(
    "recipe, count", [("d3-cifar10-autoencoder", 797_984), ("d4-cifar10-tied-autoencoder", 400_672)]
)
def test_autoencoder_recipes_have_the_reports_parameter_counts(recipe, count):
    # tests/models/test_tied.py checks the models themselves; this checks the recipes build them
    assert n_params(build_task(load_spec(recipe), SHAPE, 10).model) == count
