"""Training objectives, one per file, registered in OBJECTIVES."""

from replab.objectives import bce, cross_entropy, hinge, l1, logistic, mse, nt_xent, pair_margin  # noqa: F401  (register)
from replab.objectives.registry import OBJECTIVES

__all__ = ["OBJECTIVES"]
