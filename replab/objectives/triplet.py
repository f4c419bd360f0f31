"""The triplet margin loss (Schroff, Kalenichenko and Philbin, "FaceNet: A Unified Embedding
for Face Recognition and Clustering", CVPR 2015, arXiv:1503.03832), as report 004 uses it,
with in-batch mining (random, or the batch-hard mining of Hermans, Beyer and Leibe, "In
Defense of the Triplet Loss for Person Re-Identification", 2017, arXiv:1703.07737)::

    d(a, b) = ||a - b + 1e-6||_2                (default; torch.nn.TripletMarginLoss's)
            = ||a - b||_2^2                     (squared: true)
    L = mean over triplets of max(d(a, p) - d(a, n) + margin, 0)      (0 with no triplet)

Defaults: ``margin = 1``, ``squared = False``; ``mine_triplets``' default mining is
``random``.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES

MINING = ("random", "batch_hard")


def triplet_distance(a: torch.Tensor, b: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Row-wise distance: Euclidean as ``torch.nn.TripletMarginLoss`` computes it
    (``||a - b + 1e-6||_2``, ``F.pairwise_distance``: finite gradients when a = b), or
    the squared Euclidean distance ``||a - b||^2``."""
    if squared:
        return (a - b).pow(2).sum(1)
    return F.pairwise_distance(a, b, p=2.0, eps=1e-6)


def mine_triplets(
    z: torch.Tensor,
    labels: torch.Tensor,
    mining: str = "random",
    generator: torch.Generator | None = None,
    squared: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """In-batch (anchor, positive, negative) row indices, one triplet per usable anchor.

    Every row is an anchor (report 004, section 2.2.3) unless the batch holds no other row
    of its class or no row of another class: such anchors are skipped, so fewer than N
    triplets may come back (none for a batch of one class).

    ``random``: a positive drawn uniformly from the other rows of the anchor's class, a
    negative uniformly from the rows of other classes (report 004's sampling), from
    ``generator`` (a generator on ``z``'s device) or the global RNG.
    ``batch_hard`` (Hermans, Beyer & Leibe 2017): the farthest positive and the nearest
    negative of each anchor, by the loss's distance on the detached embeddings; the loss
    then back-propagates through those distances, which is the batch-hard loss's gradient.
    """
    if mining not in MINING:
        raise ConfigError(
            f"triplet mining {mining!r} is not known", f"use one of: {', '.join(MINING)}"
        )
    n = z.shape[0]
    labels = labels.to(z.device).view(-1)
    if labels.shape[0] != n:
        raise ValueError(f"mine_triplets got {n} embeddings but {labels.shape[0]} labels")
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(n, dtype=torch.bool, device=z.device)
    negative = ~same
    usable = positive.any(1) & negative.any(1)
    if mining == "random":
        device = generator.device if generator is not None else z.device
        # The argmax of i.i.d. uniform scores over the allowed columns
        # is a uniform choice among them.
        scores = torch.rand(2, n, n, generator=generator, device=device).to(z.device)
        pos = scores[0].masked_fill(~positive, -1.0).argmax(1)
        neg = scores[1].masked_fill(~negative, -1.0).argmax(1)
    else:
        with torch.no_grad():
            e = z.detach().float()
            d = torch.cdist(e, e).pow(2) if squared else torch.cdist(e, e)
            pos = d.masked_fill(~positive, float("-inf")).argmax(1)
            neg = d.masked_fill(~negative, float("inf")).argmin(1)
    anchors = torch.nonzero(usable).view(-1)
    return anchors, pos[anchors], neg[anchors]


@OBJECTIVES.register("triplet")
class TripletMarginLoss(nn.Module):
    """Triplet margin loss of report 004 (study F2)::

        loss = mean over triplets of max(d(a, p) - d(a, n) + margin, 0)

    with the Euclidean distance by default, as report 004 states ("We employ the Euclidean
    distance (L2 norm)") and uses ("readily available in PyTorch": ``nn.TripletMarginLoss``,
    whose values and gradients this matches exactly). Its formula line also writes
    ``d(x, y) = ||x - y||_p^2``; ``squared: true`` gives that squared-distance variant.
    An empty set of triplets (no anchor with both a positive and a negative) costs 0.

    ``target = "triplets"``: the task passes anchor, positive and negative embeddings
    (see ``mine_triplets``).
    """

    target = "triplets"

    def __init__(self, margin: float = 1.0, squared: bool = False) -> None:
        super().__init__()
        if not (margin >= 0 and math.isfinite(margin)):
            raise ConfigError(
                f"triplet margin must be a finite number >= 0 (got {margin})",
                "set objective.margin, e.g. 1.0 (report 004)",
            )
        self.margin, self.squared = margin, squared

    def distances(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return triplet_distance(anchor, positive, self.squared), triplet_distance(
            anchor, negative, self.squared
        )

    def forward(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
    ) -> torch.Tensor:
        if not (anchor.shape == positive.shape == negative.shape) or anchor.ndim != 2:
            raise ValueError(
                "triplet needs three N×d embeddings of one shape, "
                f"got {tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
            )
        if anchor.shape[0] == 0:
            return anchor.sum() * 0.0  # keeps the graph: a zero loss with zero gradients
        d_ap, d_an = self.distances(*(full_precision(t) for t in (anchor, positive, negative)))
        return (d_ap - d_an + self.margin).clamp_min(0).mean()
