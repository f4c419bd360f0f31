"""NT-Xent, SimCLR's normalized temperature-scaled cross-entropy (Chen, Kornblith, Norouzi and
Hinton, "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020,
arXiv:2002.05709, eq. 1)::

    u_a = z_a / max(||z_a||, 1e-12) for the 2N rows z = [z1; z2],  sim(a, b) = u_a . u_b
    l(a) = -log( exp(sim(a, a+) / T) / sum_{b != a} exp(sim(a, b) / T) )
    L = (1 / 2N) sum_a l(a)

where a+ is the other view of a's image (row i of z1 pairs with row i of z2) and the sum
runs over the other 2N - 1 rows (the positive and 2N - 2 negatives). Default: ``temperature
= T = 0.5``, SimCLR's CIFAR-10 setting (its ImageNet runs use 0.1). Under ``gather`` the
denominators run over the global batch's 2M rows.
"""

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.registry import OBJECTIVES


@OBJECTIVES.register("nt_xent")
class NTXentLoss(nn.Module):
    """SimCLR's normalized temperature-scaled cross-entropy between two views' projections.

    Rows ``z1[i]`` and ``z2[i]`` are two views of image i. Each of the 2N rows is an anchor
    whose positive is its other view and whose negatives are the other 2N - 2 rows:
    ``l(i, j) = -log(exp(sim(i, j) / T) / sum_{k != i} exp(sim(i, k) / T))`` with cosine
    ``sim``, averaged over all 2N anchors. One 2N×2N matrix product, no loops.

    ``target = "views"``: the task passes the two views' projections, not an input or label.
    """

    target = "views"

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if not temperature > 0:
            raise ConfigError(
                f"nt_xent temperature must be > 0 (got {temperature})",
                "set objective.temperature to a positive value, "
                "e.g. 0.5 (SimCLR's CIFAR setting) or 0.1",
            )
        self.temperature = temperature

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor, gather=None, offset: int = 0
    ) -> torch.Tensor:
        """Mean loss over this process's 2N anchors.

        ``gather`` (for distributed training, optional) maps a local N×d tensor to the
        M×d rows of all ranks, so negatives come from the whole global batch. This rank's
        rows must sit at ``offset:offset + N`` of the gathered tensors. The anchors stay the
        local ``z1``/``z2`` (so gradients flow through them even when ``gather`` does not
        carry gradients); averaging the per-rank losses of equal shards gives the loss of
        the global batch. Without ``gather``, ``offset`` must be 0.
        """
        if z1.shape != z2.shape or z1.ndim != 2:
            raise ValueError(
                "nt_xent needs two N×d views of the same shape, "
                f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
            )
        n = z1.shape[0]
        anchors = F.normalize(torch.cat([z1, z2]), dim=1)
        keys = (
            anchors if gather is None else F.normalize(torch.cat([gather(z1), gather(z2)]), dim=1)
        )
        m = keys.shape[0] // 2
        if not 0 <= offset <= m - n:
            raise ValueError(
                f"offset {offset} puts the {n} local rows outside the {m} gathered rows"
            )
        logits = anchors @ keys.T / self.temperature  # 2N × 2M
        local = torch.arange(n, device=z1.device) + offset
        own = torch.cat([local, local + m])  # each anchor's own column: not a negative
        positive = torch.cat([local + m, local])
        columns = torch.arange(2 * m, device=z1.device)
        # -inf is exact in bf16 too
        logits = logits.masked_fill(columns == own[:, None], float("-inf"))
        return F.cross_entropy(logits, positive)
