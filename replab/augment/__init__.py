"""Batched on-device augmentations for contrastive training (SimCLR views).

Every op transforms a whole N×C×H×W batch at once with per-image random parameters
drawn as tensors: no per-image Python, no PIL. The geometric ops are fused into one
affine matrix per image and resampled once (see ``pipeline``).
"""

from replab.augment import color, geometric  # noqa: F401  (register)
from replab.augment.pipeline import Augment
from replab.augment.registry import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "Augment"]
