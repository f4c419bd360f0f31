"""BYOL (Grill, Strub, Altché, Tallec, Richemond et al., "Bootstrap Your Own Latent: A New
Approach to Self-Supervised Learning", NeurIPS 2020, arXiv:2006.07733): the online network's
prediction of one view regresses the target network's projection of the other view; no
negatives::

    l(p, z) = || p / ||p|| - z / ||z|| ||^2 = 2 - 2 cos(p, z)        (z: no gradient)
    L = mean_i l(p1_i, z2_i) + mean_i l(p2_i, z1_i)                  (symmetric: true, default)
    L = mean_i l(p1_i, z2_i)                                         (symmetric: false)

with ``||v||`` floored at 1e-12 (``F.normalize``: a zero row counts as orthogonal). The
target ``z`` is the momentum copy's projection: collapse is avoided by the predictor and the
slowly moving target, not by the loss. After optimizer step k + 1 of K the task moves the
target, ``target <- m_k target + (1 - m_k) online`` (``replab.models.momentum``), with::

    m_k = 1 - (1 - momentum) (cos(pi k / K) + 1) / 2        (momentum_schedule: cosine)
    m_k = momentum                                          (momentum_schedule: constant)

so the first update uses ``momentum`` itself (k = 0). Defaults here: ``symmetric = True``,
``momentum = 0.996``, ``momentum_schedule = "cosine"``, the published ones. The paper's
other settings: projector and predictor MLPs 4096 hidden (batch norm, ReLU) to 256, LARS
(lr 0.2 x batch / 256, weight decay 1.5e-6, trust coefficient 0.001), batch 4096.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES

SCHEDULES = ("cosine", "constant")


def check_momentum(name: str, momentum: float, schedule: str) -> None:
    """The target's momentum is a method setting every momentum objective carries."""
    if not 0.0 <= momentum < 1.0 or schedule not in SCHEDULES:
        raise ConfigError(
            f"{name} needs 0 <= momentum < 1 and momentum_schedule in {SCHEDULES} "
            f"(got {momentum}, {schedule!r})",
            "e.g. objective.momentum=0.996 with momentum_schedule=cosine (BYOL) or 0.999 with "
            "constant (MoCo)",
        )


@OBJECTIVES.register("byol")
class BYOLLoss(nn.Module):
    """``target = "momentum"``: used with the momentum_contrastive task, which passes the online
    predictions of both views and the target's projections of both views. ``momentum`` and
    ``momentum_schedule`` set how the task moves the target after each step."""

    target = "momentum"

    def __init__(
        self, symmetric: bool = True, momentum: float = 0.996, momentum_schedule: str = "cosine"
    ) -> None:
        super().__init__()
        check_momentum("byol", momentum, momentum_schedule)
        self.symmetric, self.momentum, self.momentum_schedule = (
            symmetric,
            momentum,
            momentum_schedule,
        )

    def forward(
        self,
        p1: torch.Tensor,
        p2: torch.Tensor,
        z1: torch.Tensor,
        z2: torch.Tensor,
        gather=None,
        offset: int = 0,
    ) -> torch.Tensor:
        """Per-sample terms, so no ``gather`` is needed: DDP's averaging of the ranks'
        gradients gives the global batch's update."""
        if not p1.shape == p2.shape == z1.shape == z2.shape or p1.ndim != 2:
            raise ValueError(
                "byol needs four N×d tensors of one shape, "
                f"got {[tuple(t.shape) for t in (p1, p2, z1, z2)]}"
            )
        loss = _regression(p1, z2)
        return loss + _regression(p2, z1) if self.symmetric else loss


def _regression(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean of 2 - 2 cos(p, z) over rows, in float32 even under autocast (float64 stays
    float64); a zero row counts as orthogonal (normalize's eps) instead of giving NaN."""
    p, z = F.normalize(full_precision(p), dim=1), F.normalize(full_precision(z.detach()), dim=1)
    return (2 - 2 * (p * z).sum(1)).mean()
