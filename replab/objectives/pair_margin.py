"""The pair margin contrastive loss of report 001, problem 6 (after Hadsell, Chopra and LeCun,
"Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006, whose hinge is on
the distance, squared afterwards; report 001 hinges the squared distance itself)::

    d2_i = ||z_a,i - z_b,i||^2
    L = mean_i [ same_i d2_i + (1 - same_i) max(margin - d2_i, 0) ]

with no 1/2 factor. Default: ``margin = M = 2`` (report 001).
"""

import math

import torch
from torch import nn

from replab.errors import ConfigError
from replab.objectives.registry import OBJECTIVES


def permuted_pairs(
    z: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair every row of the batch with the row at a random permutation of the batch.

    Returns ``(z, z[perm], labels == labels[perm])``, the pair sampling of report 001
    (problem 6): "a batch with itself but permuted randomly", with ``same`` 1 when both
    images have the same class. A permutation can map a row to itself: that pair is a
    same-class pair at distance 0 and costs nothing. ``generator`` (a CPU or same-device
    generator) makes the permutation reproducible.
    """
    if z.shape[0] != labels.shape[0]:
        raise ValueError(f"permuted_pairs got {z.shape[0]} embeddings but {labels.shape[0]} labels")
    device = generator.device if generator is not None else z.device
    perm = torch.randperm(z.shape[0], generator=generator, device=device).to(z.device)
    return z, z[perm], labels == labels.to(z.device)[perm]


@OBJECTIVES.register("pair_margin")
class PairMarginLoss(nn.Module):
    """The pair margin contrastive loss of report 001, problem 6 (study C4, margin M = 2).

    For a pair of embeddings with squared Euclidean distance ``d2 = ||z_a - z_b||^2``::

        loss = same * d2 + (1 - same) * max(M - d2, 0)

    averaged over the N pairs. This is the report's formula verbatim (its ``SimilarLoss``
    and ``DissimilarLoss``): the hinge of a different-class pair is on the SQUARED distance,
    linear in it, not Hadsell-Chopra-LeCun's ``max(0, M - d)^2``; there is no 1/2 factor.
    So a different-class pair costs nothing once ``d >= sqrt(M)``. The loss only ever needs
    ``d2``, never ``sqrt``, so its gradient is finite when two embeddings coincide.

    ``target = "pairs"``: the task passes the embeddings of both members of each pair and
    the same-class flag (see ``permuted_pairs``), not an input or label.
    """

    target = "pairs"

    def __init__(self, margin: float = 2.0) -> None:
        super().__init__()
        if not (margin > 0 and math.isfinite(margin)):
            raise ConfigError(
                f"pair_margin margin must be a finite number > 0 (got {margin})",
                "set objective.margin to a positive value, e.g. 2.0 (report 001's M)",
            )
        self.margin = margin

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """Mean loss over N pairs: ``z_a``, ``z_b`` are N×d, ``same`` N bools or 0/1."""
        if z_a.shape != z_b.shape or z_a.ndim != 2:
            raise ValueError(
                "pair_margin needs two N×d embeddings of the same shape, "
                f"got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
            )
        if same.shape != z_a.shape[:1]:
            raise ValueError(
                "pair_margin needs one same-class flag per pair, "
                f"got shape {tuple(same.shape)} for {z_a.shape[0]} pairs"
            )
        d2 = (z_a - z_b).pow(2).sum(1)
        same = same.to(d2.dtype)
        return (same * d2 + (1 - same) * (self.margin - d2).clamp_min(0)).mean()
