"""A block-structured CNN encoder: conv blocks, then fully connected layers to the latent.

Each block is Conv(3x3, same padding) -> activation -> MaxPool(2) -> Dropout, the unit
report 001 transfers "first k blocks" of (problems 3-6). Study C's encoders:

- C1/C2/C3: ``channels=[32,64,128] block_dropout=0.25 latent_dim=256 latent_activation=relu
  latent_dropout=0.25`` (Linear 2048->256, ReLU, Dropout), with a linear head to the classes.
- C4: ``channels=[32,10] block_dropout=0.1 hidden=[1000,500,100,10] latent_dim=2``.

``block_names`` lists the blocks as dotted module names in input order; it is the whole
"blocks" protocol that ``model.pretrained.blocks`` and freezing by block rely on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models.layers import activation as make_activation
from replab.models.layers import flat_size, mlp
from replab.models.registry import MODELS


def conv_block(
    c_in: int, c_out: int, kernel: int, activation: str, pool: int, dropout: float
) -> nn.Sequential:
    layers = [
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2),
        make_activation(activation),
        nn.MaxPool2d(pool),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


@MODELS.register("cnn")
class CNNEncoder(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        channels: Sequence[int] = (32, 64, 128),
        kernel: int = 3,
        pool: int = 2,
        block_dropout: float = 0.25,
        hidden: Sequence[int] = (),
        latent_dim: int = 256,
        activation: str = "relu",
        dropout: float = 0.0,
        latent_activation: str | None = None,
        latent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ConfigError(
                f"cnn kernel={kernel} must be odd so a block keeps the image size before pooling",
                "use kernel=3 or 5",
            )
        c_in, size = in_shape[0], min(in_shape[1:])
        blocks = []
        for c_out in channels:
            blocks.append(conv_block(c_in, c_out, kernel, activation, pool, block_dropout))
            c_in, size = c_out, size // pool
        if size < 1:
            raise ConfigError(
                f"{len(channels)} pooled blocks shrink a {tuple(in_shape)} image to nothing",
                "use fewer blocks or pool=1",
            )
        self.blocks = nn.Sequential(*blocks)
        with torch.no_grad():
            self.feature_shape = tuple(self.blocks(torch.zeros(1, *in_shape)).shape[1:])
        self.latent_dim = latent_dim
        fc = mlp(
            [flat_size(self.feature_shape), *hidden, latent_dim],
            activation,
            dropout,
            latent_activation,
        )
        self.fc = nn.Sequential(*fc, nn.Dropout(latent_dropout)) if latent_dropout > 0 else fc

    @property
    def block_names(self) -> list[str]:
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(x).flatten(1))
