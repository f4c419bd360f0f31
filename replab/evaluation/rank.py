"""The effective rank of a set of latents: how many dimensions they really use.

Roy and Vetterli's effective rank (2007), as RankMe (Garrido, Balestriero, Najman and LeCun,
ICML 2023, arXiv:2210.02885) uses it on embeddings: with the singular values s_k of the
N×d matrix of latents,

    p_k = s_k / sum(s) + eps,    rank = exp(-sum_k p_k log p_k)

The latents are centred first (RankMe does not): an offset shared by every latent, which
autoencoders with ReLU codes have, carries no information but would dominate s_1 and read
as a collapse. The figure lies between 1 (all latents on one line) and min(N, d) (every
direction equally used); 0 when all latents are equal — the collapse a self-supervised
loss can hide.
"""

from __future__ import annotations

import torch

EPS = 1e-7  # RankMe's epsilon: keeps log finite for zero singular values


def effective_rank(z: torch.Tensor, eps: float = EPS) -> float:
    """RankMe of ``z`` (N×d, N >= 1), computed in float64 on the CPU so the figure does not
    depend on the device or on autocast."""
    if z.ndim != 2 or len(z) == 0:
        raise ValueError(f"effective_rank needs an N×d matrix with N >= 1, got {tuple(z.shape)}")
    z = z.detach().to("cpu", torch.float64)
    s = torch.linalg.svdvals(z - z.mean(0))
    total = s.sum()
    if not total > 1e-12 * max(1.0, float(z.abs().max())):  # all latents equal: no spread
        return 0.0
    p = s / total + eps
    return float(torch.exp(-(p * p.log()).sum()))
