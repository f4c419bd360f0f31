import torch
from torch import nn

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("mse")
class MSELoss(nn.Module):
    """Mean squared error over every pixel (studies B, D3, E1)."""

    target = "input"

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).pow(2).mean()
