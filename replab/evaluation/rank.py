"""The effective rank of a set of latents: how many dimensions they really use.

RankMe (Garrido, Balestriero, Najman and LeCun, ICML 2023, arXiv:2210.02885), after Roy and
Vetterli's effective rank (2007): with the singular values s_k of the N×d embedding matrix,

    p_k = s_k / sum(s) + eps,    rank = exp(-sum_k p_k log p_k)

It lies between 1 (every embedding on one line: a collapsed encoder) and min(N, d) (all
directions equally used), and is what shows a self-supervised method's collapse when its
loss does not.
"""

from __future__ import annotations

import torch

EPS = 1e-7  # RankMe's epsilon: keeps log finite for zero singular values


def effective_rank(z: torch.Tensor, eps: float = EPS) -> float:
    """RankMe of ``z`` (N×d, N >= 1), computed in float64 on the CPU so the figure does not
    depend on the device or on autocast."""
    if z.ndim != 2 or len(z) == 0:
        raise ValueError(f"effective_rank needs an N×d matrix with N >= 1, got {tuple(z.shape)}")
    s = torch.linalg.svdvals(z.detach().to("cpu", torch.float64))
    total = s.sum()
    if not total > 0:  # an all-zero matrix spans nothing
        return 0.0
    p = s / total + eps
    return float(torch.exp(-(p * p.log()).sum()))
