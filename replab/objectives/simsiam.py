"""SimSiam (Chen and He, "Exploring Simple Siamese Representation Learning", CVPR 2021,
arXiv:2011.10566, algorithm 1): one network on two views, a predictor MLP h after the
projection f, and a stop-gradient on the projection it predicts; no negatives, no momentum
encoder, no large batch::

    D(p, z) = - (p / ||p||) . (z / ||z||)                  (z: no gradient)
    L = D(p1, z2) / 2 + D(p2, z1) / 2                       (symmetric: true, default)
    L = D(p1, z2)                                           (symmetric: false)

averaged over the batch, norms floored at 1e-12 (a zero row counts as orthogonal). The
stop-gradient is what prevents collapse (the paper's Figure 2: without it the loss reaches
-1 at once and the outputs collapse to a constant). Published settings: projector 3 layers of
2048 with batch norm (2 on CIFAR), predictor 2048-512-2048 with batch norm in its hidden
layer, SGD lr 0.05 x batch / 256 (0.03 on CIFAR), weight decay 1e-4, momentum 0.9, cosine,
with the predictor's lr kept constant. The ``contrastive`` task builds the predictor
(``model.predictor``, ``uses_predictor``) and passes ``(p1, p2, z1, z2)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("simsiam")
class SimSiamLoss(nn.Module):
    """SimSiam (stop-gradient siamese; predictor, no momentum encoder)."""

    target = "views"
    uses_predictor = True

    def __init__(self, symmetric: bool = True) -> None:
        super().__init__()
        self.symmetric = symmetric

    def forward(
        self,
        p1: torch.Tensor,
        p2: torch.Tensor,
        z1: torch.Tensor,
        z2: torch.Tensor,
        gather=None,
        offset: int = 0,
    ) -> torch.Tensor:
        """Per-sample terms: no ``gather`` needed (DDP's gradient averaging is the global
        batch's update)."""
        if not p1.shape == p2.shape == z1.shape == z2.shape or p1.ndim != 2:
            raise ValueError(
                "simsiam needs four N×d tensors of one shape, "
                f"got {[tuple(t.shape) for t in (p1, p2, z1, z2)]}"
            )
        if not self.symmetric:
            return _negative_cosine(p1, z2)
        return (_negative_cosine(p1, z2) + _negative_cosine(p2, z1)) / 2


def _negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    p, z = F.normalize(full_precision(p), dim=1), F.normalize(full_precision(z.detach()), dim=1)
    return -(p * z).sum(1).mean()
