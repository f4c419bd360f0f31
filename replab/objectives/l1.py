"""Mean absolute error, the L1 reconstruction loss (Zhao, Gallo, Frosio and Kautz, "Loss
Functions for Image Restoration with Neural Networks", IEEE Transactions on Computational
Imaging 3, 2017, arXiv:1511.08861, who find it gives sharper images than L2)::

    L = mean over every element of |prediction - target|

averaged over batch, channels and pixels alike. No options.
"""

import torch
from torch import nn

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("l1")
class L1Loss(nn.Module):
    """Mean absolute error over every pixel (study A1): sharper reconstructions than MSE."""

    target = "input"

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - target).abs().mean()
