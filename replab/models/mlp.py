"""Fully connected encoder and decoder (study A1 MNIST, B1, D3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from replab.models.layers import flat_size, mlp
from replab.models.registry import MODELS


@MODELS.register("mlp")
class MLPEncoder(nn.Module):
    """Flatten, then Linear+activation through ``hidden``, then a linear map to the latent."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        latent_dim: int = 128,
        hidden: Sequence[int] = (256,),
        activation: str = "relu",
        dropout: float = 0.0,
        latent_activation: str | None = None,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(
            [flat_size(in_shape), *hidden, latent_dim], activation, dropout, latent_activation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@MODELS.register("mlp_decoder")
class MLPDecoder(nn.Module):
    """Latent -> Linear+activation through ``hidden`` -> pixels, reshaped to ``out_shape``."""

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, ...],
        hidden: Sequence[int] = (256,),
        activation: str = "relu",
        dropout: float = 0.0,
        output_activation: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = mlp(
            [latent_dim, *hidden, flat_size(out_shape)], activation, dropout, output_activation
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.out_shape)
