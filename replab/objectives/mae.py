"""MAE's reconstruction loss (He, Chen, Xie, Li, Dollár and Girshick, "Masked Autoencoders
Are Scalable Vision Learners", CVPR 2022, arXiv:2111.06377, section 3): the mean squared
error between predicted and true pixels, on the hidden patches only::

    t_l = patch l's pixels (p*p*C values)                       (norm_pix: false)
    t_l = (t_l - mean(t_l)) / sqrt(var(t_l) + eps)              (norm_pix: true; var unbiased)
    L = sum_{n, l} m_nl * mean_j (y_nlj - t_nlj)^2 / sum_{n, l} m_nl

with m_nl = 1 where patch l of image n was hidden. A patch the encoder saw costs nothing:
the paper measured that scoring the visible ones too lowers linear-probe accuracy.
``norm_pix: true`` (the per-patch normalised target) is the paper's better-representation
variant (its Table 1c: 85.4 % fine-tuned against 84.9 % on plain pixels); the released code's
default, and here, is false (plain pixels), the simpler target whose reconstructions read as
images. ``eps = 1e-6`` as released.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("mae")
class MAELoss(nn.Module):
    """``target = "masked"``: the mae task passes the predicted patches, the true patches and
    the mask (1 = hidden)."""

    target = "masked"

    def __init__(self, norm_pix: bool = False, eps: float = 1e-6) -> None:
        super().__init__()
        if not eps > 0:
            raise ConfigError(f"mae eps must be > 0 (got {eps})", "leave it at 1e-6")
        self.norm_pix, self.eps = norm_pix, eps

    def forward(
        self, prediction: torch.Tensor, patches: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        if prediction.shape != patches.shape or prediction.ndim != 3:
            raise ValueError(
                "mae needs predictions and patches of one N×L×P shape, "
                f"got {tuple(prediction.shape)} and {tuple(patches.shape)}"
            )
        if mask.shape != prediction.shape[:2]:
            raise ValueError(f"mae's mask must be N×L, got {tuple(mask.shape)}")
        target = full_precision(patches)
        if self.norm_pix:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + self.eps).sqrt()
        per_patch = (full_precision(prediction) - target).pow(2).mean(-1)  # (N, L)
        mask = mask.to(per_patch.dtype)
        # a batch with no hidden patch (mask_ratio near 0 on a tiny grid) scores 0, not NaN
        return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
