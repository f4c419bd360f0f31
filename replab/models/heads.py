"""Classifier heads on top of a latent vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models.layers import mlp
from replab.models.registry import MODELS


@MODELS.register("linear_head")
class LinearHead(nn.Module):
    """One affine map to class scores. ``binary: true`` (two classes only) gives ONE score,
    > 0 meaning the second class: a binary SVM with the hinge loss (study D), as in report 002."""

    def __init__(self, in_dim: int, num_classes: int, binary: bool = False) -> None:
        super().__init__()
        if binary and num_classes != 2:
            raise ConfigError(
                f"linear_head binary: true needs exactly 2 classes, the data has {num_classes}",
                "select two classes with data.classes=[a,b], or drop binary",
            )
        self.net = nn.Linear(in_dim, 1 if binary else num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@MODELS.register("mlp_head")
class MLPHead(nn.Module):
    """Hidden layers with activation and dropout, then logits (A1 MNIST: 128-64-10)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        hidden: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp([in_dim, *hidden, num_classes], activation, dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@MODELS.register("projection_head")
class ProjectionHead(nn.Module):
    """SimCLR's projection g(h): the contrastive loss sees its output,
    probes see h (A3: 512-512-128). Also BYOL's predictor (the ``model.predictor`` slot).
    ``batchnorm: true`` puts batch norm after each hidden layer, as BYOL's projector and
    predictor (4096 hidden, BN, ReLU, 256 out) have it."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        hidden: Sequence[int] = (512,),
        activation: str = "relu",
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = mlp([in_dim, *hidden, out_dim], activation, batchnorm=batchnorm)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
