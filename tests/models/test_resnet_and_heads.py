"""ResNet-18 for 32x32 images and the SimCLR projection head."""

from __future__ import annotations

import torch
import torchvision

from replab.models import MODELS


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_imagenet_stem_resnet18_has_torchvisions_parameters():
    ours = MODELS.build("resnet18", {"stem": "imagenet"}, where="test", in_shape=(3, 224, 224))
    reference = torchvision.models.resnet18()
    assert n_params(ours) == n_params(reference) - n_params(reference.fc)
    assert ours.latent_dim == 512


def test_cifar_stem_keeps_32x32_in_the_first_stage():
    model = MODELS.build("resnet18", {}, where="test", in_shape=(3, 32, 32))
    assert (
        isinstance(model.stem[0], torch.nn.Conv2d)
        and model.stem[0].kernel_size == (3, 3)
        and model.stem[0].stride == (1, 1)
    )
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    x = torch.rand(2, 3, 32, 32)
    assert model.stages[0](model.stem(x)).shape == (2, 64, 32, 32)
    assert model(x).shape == (2, 512)


def test_width_scales_every_stage():
    model = MODELS.build("resnet18", {"width": 8}, where="test", in_shape=(1, 28, 28))
    assert model.latent_dim == 64 and model(torch.rand(3, 1, 28, 28)).shape == (3, 64)


def test_projection_head_shape():
    head = MODELS.build(
        "projection_head", {"hidden": [512], "out_dim": 128}, where="test", in_dim=512
    )
    assert head(torch.rand(4, 512)).shape == (4, 128)
    assert n_params(head) == 512 * 512 + 512 + 512 * 128 + 128
