"""The SVM hinge loss (Cortes and Vapnik, "Support-Vector Networks", Machine Learning 20,
1995) and its multi-class form (Weston and Watkins, "Support Vector Machines for Multi-Class
Pattern Recognition", ESANN 1999), as PyTorch's ``nn.MultiMarginLoss`` computes it::

    one column:  y_i = 2 label_i - 1 (labels 0/1 read as -1/+1)
                 L = C * mean_i max(0, margin - y_i s_i)
    K columns:   L = C * mean_i (1 / K) sum_{j != label_i} max(0, margin - s_{i,label_i} + s_ij)

(the multi-class sum over the K - 1 wrong classes is divided by K, the number of columns).
Defaults: ``C = 1``, ``margin = 1``. The SVM's L2 term is the optimizer's weight decay.
"""

import torch
from torch import nn

from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("hinge")
class HingeLoss(nn.Module):
    """The SVM hinge loss, ``C * mean(max(0, margin - y f(x)))`` (study D).

    One output column: a binary SVM, labels 0/1 read as -1/+1. Several columns: the
    multi-class (Weston-Watkins) hinge, summed over the wrong classes and divided by the
    number of classes (``nn.MultiMarginLoss``). The L2 term of the SVM is the optimizer's
    weight decay.
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
