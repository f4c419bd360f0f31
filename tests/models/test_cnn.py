"""The block-structured CNN (study C): report 001's layer tables, and the blocks protocol."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import MODELS
from replab.recipes import load_spec
from replab.tasks import build_task


def test_c1_network_matches_report_001_table():
    task = build_task(load_spec("c1-cifar10-cnn"), (3, 32, 32), 10)
    enc = task.model.encoder
    assert enc.feature_shape == (128, 4, 4)  # the report's "Input = 4 x 4 x 128 = 2048"
    # convs 896 + 18,496 + 73,856, Linear 2048->256 524,544, Linear 256->10 2,570
    assert sum(p.numel() for p in task.model.parameters()) == 620_362
    assert task.model(torch.rand(5, 3, 32, 32)).shape == (5, 10)
    kinds = [type(m).__name__ for m in enc.blocks[0]]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Dropout"]


def test_c4_network_embeds_in_two_dimensions():
    task = build_task(load_spec("c4-cifar10-pairs"), (3, 32, 32), 10)
    assert task.model.encoder.feature_shape == (10, 8, 8)
    assert task.model(torch.rand(3, 3, 32, 32)).shape == (3, 2)


def test_block_names_are_real_submodules_in_order():
    cnn = MODELS.build("cnn", {"channels": [8, 16]}, where="t", in_shape=(3, 32, 32))
    assert cnn.block_names == ["blocks.0", "blocks.1"]
    assert cnn.get_submodule("blocks.1")[0].in_channels == 8
    resnet = MODELS.build("resnet18", {"width": 4}, where="t", in_shape=(3, 32, 32))
    assert [type(resnet.get_submodule(n)).__name__ for n in resnet.block_names] == [
        "Sequential"
    ] * 5


@pytest.mark.parametrize(
    ("params", "message"), [({"kernel": 4}, "must be odd"), ({"channels": [8] * 6}, "shrink")]
)
def test_impossible_cnn_settings_are_clear_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        MODELS.build("cnn", params, where="t", in_shape=(3, 32, 32))
