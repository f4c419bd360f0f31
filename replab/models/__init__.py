"""Model zoo: every encoder, decoder and head registers itself in MODELS."""

from replab.models.composite import (
    AutoEncoder,
    Classifier,
    Identity,
    MomentumProjected,
    Predicted,
    Projected,
)
from replab.models.momentum import Momentum, momentum_at
from replab.models.registry import MODELS
from replab.registry import discover

discover(__name__)  # every module registers its models: a new model is one new file

__all__ = [
    "MODELS",
    "AutoEncoder",
    "Classifier",
    "Identity",
    "Momentum",
    "MomentumProjected",
    "Predicted",
    "Projected",
    "momentum_at",
]
