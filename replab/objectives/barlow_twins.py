"""Barlow Twins (Zbontar, Jing, Misra, LeCun and Deny, "Barlow Twins: Self-Supervised Learning
via Redundancy Reduction", ICML 2021, arXiv:2103.03230).

Each projection dimension is standardised over the batch, and the cross-correlation matrix
of the two views is pushed towards the identity: its diagonal to 1 (the views agree) and
everything else to 0 (dimensions carry different information), so the embedding cannot
collapse without negatives or a momentum network::

    C = z1n.T @ z2n / N          z_n = (z - mean_batch) / sqrt(var_batch + eps)   (d x d)
    L = sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2        (sums, not means, over C)

Published defaults: ``lambd = 0.0051`` (the paper's 5e-3, tuned on ImageNet), a 3-layer
8192-d projector, LARS, batch 2048; the standardisation is an affine-free batch norm (biased
variance, ``eps = 1e-5``), as here. Defaults here: ``lambd = 0.0051``, ``eps = 1e-5``.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("barlow_twins")
class BarlowTwinsLoss(nn.Module):
    """``target = "views"``: used with the contrastive task, like nt_xent
    (``objective: {name: barlow_twins, lambd: 0.0051}``)."""

    target = "views"

    def __init__(self, lambd: float = 0.0051, eps: float = 1e-5) -> None:
        super().__init__()
        if not lambd >= 0 or not eps > 0:
            raise ConfigError(
                f"barlow_twins needs lambd >= 0 and eps > 0 (got {lambd}, {eps})",
                "set objective.lambd to e.g. 0.0051 (the paper's) and leave eps at 1e-5",
            )
        self.lambd, self.eps = lambd, eps

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor, gather=None, offset: int = 0
    ) -> torch.Tensor:
        """The loss of the global batch.

        ``gather`` (distributed training) maps this rank's N x d rows to every rank's, with
        gradients: the batch statistics and C are then those of the global batch, and every
        rank computes the same loss (DDP's averaging of the rank gradients, each holding the
        summed gradient of its own rows, gives the global batch's gradient). ``offset`` is
        accepted for the contrastive task's call and not needed here.
        """
        if z1.shape != z2.shape or z1.ndim != 2:
            raise ValueError(
                "barlow_twins needs two N×d views of the same shape, "
                f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
            )
        if gather is not None:
            z1, z2 = gather(z1), gather(z2)
        n = z1.shape[0]
        c = self._standardise(z1).T @ self._standardise(z2) / n  # d x d
        on_diagonal = (1 - c.diagonal()).pow(2).sum()
        off_diagonal = c.pow(2).sum() - c.diagonal().pow(2).sum()
        return on_diagonal + self.lambd * off_diagonal

    def _standardise(self, z: torch.Tensor) -> torch.Tensor:
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()  # batch statistics in float32 even under autocast
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + self.eps)
