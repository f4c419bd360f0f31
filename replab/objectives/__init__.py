"""Training objectives, one per file, registered in OBJECTIVES."""

from replab.objectives import (  # noqa: F401  (register)
    bce,
    cross_entropy,
    elbo,
    hinge,
    l1,
    logistic,
    mse,
    nt_xent,
    pair_margin,
    triplet,
)
from replab.objectives.registry import OBJECTIVES

__all__ = ["OBJECTIVES"]
