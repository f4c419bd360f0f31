"""Pixel-wise binary cross-entropy: the reconstruction error of a Bernoulli decoder (Hinton
and Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks", Science 313,
2006, who train their MNIST autoencoders with it; Kingma and Welling, "Auto-Encoding
Variational Bayes", ICLR 2014, arXiv:1312.6114, appendix C.1)::

    logits = False (default):  p = clamp(prediction, 1e-7, 1 - 1e-7)
                               L = mean over every element of -(x log p + (1 - x) log(1 - p))
    logits = True:             p = sigmoid(prediction), the same mean, computed stably as
                               mean of max(s, 0) - s x + log(1 + exp(-|s|))   (s = prediction)

The mean runs over batch, channels and pixels alike (``F.binary_cross_entropy``'s
``reduction="mean"``); targets ``x`` in [0, 1]. Default: ``logits = False``.
"""

import torch
from torch import nn
from torch.nn import functional as F

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("bce")
class BCELoss(nn.Module):
    """Pixel-wise binary cross-entropy for reconstructions in [0, 1].

    ``logits: true`` expects the decoder's raw outputs (no sigmoid), which is the
    numerically stable form.
    """

    target = "input"

    def __init__(self, logits: bool = False) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.logits:
            return F.binary_cross_entropy_with_logits(prediction, target)
        return F.binary_cross_entropy(prediction.clamp(1e-7, 1 - 1e-7), target)
