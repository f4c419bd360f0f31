"""Mean squared error, the L2 reconstruction loss of autoencoders (Hinton and Salakhutdinov,
"Reducing the Dimensionality of Data with Neural Networks", Science 313, 2006; a Gaussian
decoder of fixed variance, up to constants)::

    L = mean over every element of (prediction - target)^2

averaged over batch, channels and pixels alike. No options.
"""

import torch
from torch import nn

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("mse")
class MSELoss(nn.Module):
    """Mean squared error over every pixel (studies B, D3, E1)."""

    target = "input"

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).pow(2).mean()
