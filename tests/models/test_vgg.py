"""VGG-16-BN encoder (study F2): torchvision's conv part, report 004's head, five blocks."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from replab.errors import ConfigError
from replab.models import MODELS


def vgg(**params):
    return MODELS.build("vgg16_bn", params, where="test", in_shape=(3, 32, 32))


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_conv_part_has_torchvisions_vgg16_bn_features_parameters():
    assert count(vgg().stages) == count(make_layers(cfgs["D"], batch_norm=True)) == 14_723_136


def test_pool_7_is_report_004s_encoder_exactly():
    """Report 004's torch summary: Linear(25088, 64) with 1,605,696
    parameters, 16,328,832 in all."""
    model = vgg(latent_dim=64, pool=7)
    assert count(model.project) == 1_605_696 and count(model) == 16_328_832
    assert count(vgg(latent_dim=64)) == 14_723_136 + 512 * 64 + 64


def test_shapes_blocks_and_width():
    model = vgg(latent_dim=16, width=0.125).eval()
    x = torch.rand(3, 3, 32, 32)
    assert model(x).shape == (3, 16) and model.latent_dim == 16
    assert model.block_names == [f"stages.{i}" for i in range(5)]
    h, sides = x, []
    for name in model.block_names:
        h = model.get_submodule(name)(h)
        sides.append((h.shape[1], h.shape[2]))
    # channels / 8, one halving per stage
    assert sides == [(8, 16), (16, 8), (32, 4), (64, 2), (64, 1)]


def test_too_small_images_are_a_clear_error():
    with pytest.raises(ConfigError, match="at least 32x32"):
        MODELS.build("vgg16_bn", {}, where="test", in_shape=(1, 28, 28))
