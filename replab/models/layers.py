"""Small building blocks shared by the model files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from torch import nn

from replab.errors import ConfigError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
    "none": nn.Identity,
}


def activation(name: str | None) -> nn.Module:
    key = (name or "none").lower()
    if key not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}", f"use one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def mlp(
    sizes: Sequence[int],
    act: str = "relu",
    dropout: float = 0.0,
    last_act: str | None = None,
    batchnorm: bool = False,
) -> nn.Sequential:
    """Linear layers through ``sizes``; (batch norm,) activation and dropout after every hidden
    layer."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(activation(act))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    if last_act:
        layers.append(activation(last_act))
    return nn.Sequential(*layers)


def per_layer(value: int | Sequence[int], n: int, what: str) -> list[int]:
    """Broadcast a scalar conv setting to ``n`` layers, or check a list has ``n`` entries."""
    if isinstance(value, int):
        return [value] * n
    if len(value) != n:
        raise ConfigError(
            f"{what} has {len(value)} entries for {n} conv layers",
            f"give one {what} per layer or a single number",
        )
    return list(value)


def flat_size(shape: Sequence[int]) -> int:
    return math.prod(shape)


def latent_dim_of(encoder: nn.Module) -> int:
    """``encoder.latent_dim``: the size of the vector an encoder gives per image. Every encoder
    sets it as an int attribute, which ``nn.Module``'s typing cannot see."""
    return cast(int, encoder.latent_dim)
