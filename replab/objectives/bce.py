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
