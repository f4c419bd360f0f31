"""Batched on-device augmentations for contrastive training (SimCLR views).

Every op transforms a whole N×C×H×W batch at once with per-image random parameters
drawn as tensors: no per-image Python, no PIL. The geometric ops are fused into one
affine matrix per image and resampled once (see ``pipeline``).
"""

from replab.augment.pipeline import Augment
from replab.augment.registry import AUGMENTATIONS
from replab.registry import discover

discover(__name__)  # every module registers its ops: a new augmentation is one new file

__all__ = ["AUGMENTATIONS", "Augment"]
