"""Model zoo: every encoder, decoder and head registers itself in MODELS."""

from replab.models import cnn, conv, heads, mlp, pixels, resnet, tied, vgg  # noqa: F401  (register the models)
from replab.models.composite import AutoEncoder, Classifier, Identity, Projected
from replab.models.registry import MODELS

__all__ = ["MODELS", "AutoEncoder", "Classifier", "Identity", "Projected"]
