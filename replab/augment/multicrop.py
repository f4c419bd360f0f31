"""Multi-crop views (Caron et al., SwAV, NeurIPS 2020, arXiv:2006.09882; DINO, ICCV 2021,
arXiv:2104.14294): two global crops of a large area and ``local_crops`` crops of a small
one per image, each then augmented by the rest of the list.

``augment: [{name: multi_crop, local_crops: 4}, {name: horizontal_flip}, ...]`` makes the
pipeline's ``views`` give 2 + ``local_crops`` views instead of two: view k's geometry is its
random resized crop (``global_scale`` for the first two, ``local_scale`` for the others)
followed by the list's other geometric ops, resampled once, then the colour ops. DINO's
published crops: global area 0.4-1 at 224 px, 8 local crops of area 0.05-0.4 at 96 px.
Here every crop is resampled to the image's own size, so every encoder (an MLP, a ViT with
fixed position embeddings) takes the local crops as they are; the cost is that a local crop
costs what a global one does, where DINO's 96 px locals cost a fifth.

Which tasks read the local crops: ``momentum_contrastive`` hands them to an objective that
takes them (``dino``: the teacher sees the globals, the student every crop);
``contrastive`` scores each local crop against both globals with the objective's own
two-view loss. Without ``multi_crop`` a task gets the usual two views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from replab.augment.geometric import RandomResizedCrop
from replab.augment.registry import AUGMENTATIONS
from replab.errors import ConfigError

GLOBAL_CROPS = 2


@AUGMENTATIONS.register("multi_crop")
class MultiCrop:
    def __init__(
        self,
        local_crops: int = 8,
        global_scale: Sequence[float] = (0.4, 1.0),
        local_scale: Sequence[float] = (0.05, 0.4),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
    ) -> None:
        if isinstance(local_crops, bool) or local_crops < 0:
            raise ConfigError(
                f"multi_crop local_crops must be a count >= 0 (got {local_crops})",
                "write e.g. local_crops: 6 (0 gives the two global crops only)",
            )
        self.local_crops = local_crops
        self.crops = (RandomResizedCrop(global_scale, ratio), RandomResizedCrop(local_scale, ratio))

    @property
    def count(self) -> int:
        """Views per image: the two global crops, then the local ones."""
        return GLOBAL_CROPS + self.local_crops

    def crop_matrices(self, view: int, n: int, device, generator=None, size=None) -> torch.Tensor:
        """The [n, 3, 3] crops of view ``view`` (0 and 1 global, the rest local)."""
        crop = self.crops[0] if view < GLOBAL_CROPS else self.crops[1]
        return crop.matrices(n, device, generator, size)
