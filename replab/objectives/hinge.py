import torch
from torch import nn

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("hinge")
class HingeLoss(nn.Module):
    """The SVM hinge loss, ``C * mean(max(0, margin - y f(x)))`` (study D).

    One output column: a binary SVM, labels 0/1 read as -1/+1. Several columns: the
    multi-class (Weston-Watkins) hinge, averaged over the wrong classes. The L2 term of
    the SVM is the optimizer's weight decay.
    """

    target = "label"

    def __init__(self, C: float = 1.0, margin: float = 1.0) -> None:
        super().__init__()
        self.C, self.margin = C, margin

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if scores.ndim == 1 or scores.shape[1] == 1:
            signs = labels.float() * 2 - 1
            return self.C * (self.margin - signs * scores.view(-1)).clamp_min(0).mean()
        true = scores.gather(1, labels.view(-1, 1))
        violations = (self.margin - true + scores).clamp_min(0)
        violations = violations.scatter(1, labels.view(-1, 1), 0.0)
        return self.C * violations.sum(1).div(scores.shape[1]).mean()
