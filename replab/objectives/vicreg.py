"""VICReg (Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning", ICLR 2022, arXiv:2105.04906): variance, invariance and covariance
terms on two views' embeddings (N x d), no negatives and no momentum network::

    invariance   s = mean over rows and dimensions of (z1 - z2)^2
    variance     v(Z) = mean_j relu(gamma - sqrt(Var_j(Z) + eps))        (unbiased Var)
    covariance   c(Z) = sum_{i != j} Cov(Z)_ij^2 / d                     (Cov over n - 1)
    L = sim * s + std * (v(Z1) + v(Z2)) / 2 + cov * (c(Z1) + c(Z2))

as the authors' released code weighs them (its variance term averages the two branches).
Defaults here, the published ones: ``sim = std = 25``, ``cov = 1``, ``gamma = 1``, ``eps =
1e-4``; the paper's other settings: an 8192-d 3-layer expander, LARS, batch 2048.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("vicreg")
class VICRegLoss(nn.Module):
    """``target = "views"``: used with the contrastive task, like nt_xent and barlow_twins."""

    target = "views"

    def __init__(
        self,
        sim: float = 25.0,
        std: float = 25.0,
        cov: float = 1.0,
        gamma: float = 1.0,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        if min(sim, std, cov) < 0 or not gamma > 0 or not eps > 0:
            raise ConfigError(
                f"vicreg needs sim, std, cov >= 0 and gamma, eps > 0 "
                f"(got {sim}, {std}, {cov}, {gamma}, {eps})",
                "leave the paper's defaults (sim 25, std 25, cov 1, gamma 1, eps 1e-4) or set "
                "objective.sim / std / cov to non-negative weights",
            )
        self.sim, self.std, self.cov, self.gamma, self.eps = sim, std, cov, gamma, eps

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor, gather=None, offset: int = 0
    ) -> torch.Tensor:
        """The loss of the global batch: with ``gather`` (distributed training) every term is
        computed over all ranks' rows, as Barlow Twins does (``offset`` is not needed)."""
        if z1.shape != z2.shape or z1.ndim != 2 or len(z1) < 2:
            raise ValueError(
                f"vicreg needs two N×d views of the same shape with N >= 2, "
                f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
            )
        if gather is not None:
            z1, z2 = gather(z1), gather(z2)
        if z1.dtype in (torch.float16, torch.bfloat16):
            z1, z2 = z1.float(), z2.float()  # variances in float32 even under autocast
        invariance = F.mse_loss(z1, z2)
        variance = (self._variance(z1) + self._variance(z2)) / 2
        covariance = self._covariance(z1) + self._covariance(z2)
        return self.sim * invariance + self.std * variance + self.cov * covariance

    def _variance(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.gamma - torch.sqrt(z.var(0) + self.eps)).mean()

    @staticmethod
    def _covariance(z: torch.Tensor) -> torch.Tensor:
        n, d = z.shape
        centred = z - z.mean(0)
        c = centred.T @ centred / (n - 1)  # d x d
        return (c.pow(2).sum() - c.diagonal().pow(2).sum()) / d
