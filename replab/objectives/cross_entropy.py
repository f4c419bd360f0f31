"""Softmax cross-entropy on class logits, with the label smoothing of Szegedy, Vanhoucke, Ioffe,
Shlens and Wojna ("Rethinking the Inception Architecture for Computer Vision", CVPR 2016,
arXiv:1512.00567, section 7)::

    log p_ik = s_ik - log sum_c exp(s_ic)                       (K classes, s the logits)
    L = mean_i [ (1 - eps) (-log p_{i,y_i}) + (eps / K) sum_k (-log p_ik) ]

i.e. the cross-entropy against the target distribution (1 - eps) onehot(y) + eps / K,
averaged over the batch (``F.cross_entropy``). Default: ``label_smoothing = eps = 0``, the
plain negative log-likelihood of the label.
"""

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
