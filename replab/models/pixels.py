"""The identity encoder on raw pixels: a linear classifier is ``pixels`` +
``linear_head`` (study D1-D2)."""

from __future__ import annotations

import torch
from torch import nn

from replab.models.layers import flat_size
from replab.models.registry import MODELS


@MODELS.register("pixels")
class PixelsEncoder(nn.Module):
    """Flattens the image; latent_dim = C*H*W and no parameters, so the head sees the pixels
    (normalised by ``data.normalize``) directly, as report 002's ``SimpleSVM`` does."""

    def __init__(self, in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.latent_dim = flat_size(in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)
