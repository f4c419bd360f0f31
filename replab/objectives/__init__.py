"""Training objectives, one per file, each registered by name in ``OBJECTIVES``: the
reconstruction losses (mse, l1, bce), the classifiers' (cross_entropy, hinge, logistic),
the VAE's elbo, the metric losses (pair_margin, triplet) and the self-supervised ones
(nt_xent, barlow_twins, vicreg, byol, moco). Importing the package imports every module,
which registers its objective; each module's docstring gives its paper and formula."""

from replab.objectives.registry import OBJECTIVES
from replab.registry import discover

discover(__name__)  # every module registers its objective: a new loss is one new file

__all__ = ["OBJECTIVES"]
