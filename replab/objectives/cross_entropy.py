import torch
from torch import nn
from torch.nn import functional as F

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("cross_entropy")
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy on class logits, with optional label smoothing."""

    target = "label"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
