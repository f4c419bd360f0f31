"""Classifier heads on top of a latent vector."""

from __future__ import annotations

import torch
from torch import nn

from replab.models.layers import mlp
from replab.models.registry import MODELS


@MODELS.register("linear_head")
class LinearHead(nn.Module):
    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Linear(in_dim, num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@MODELS.register("mlp_head")
class MLPHead(nn.Module):
    """Hidden layers with activation and dropout, then logits (A1 MNIST: 128-64-10)."""

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        hidden: list[int] = (64,),  # type: ignore[assignment]
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp([in_dim, *hidden, num_classes], activation, dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@MODELS.register("projection_head")
class ProjectionHead(nn.Module):
    """SimCLR's projection g(h): the contrastive loss sees its output, probes see h (A3: 512-512-128)."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden: list[int] = (512,), activation: str = "relu") -> None:  # type: ignore[assignment]
        super().__init__()
        self.net = mlp([in_dim, *hidden, out_dim], activation)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
