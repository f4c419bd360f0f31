"""An augmentation pipeline that makes one SimCLR view of a whole batch in a few kernels.

All geometric ops are multiplied, in list order, into one affine matrix per image and the
batch is resampled by a single ``affine_grid`` + ``grid_sample`` (bilinear, zero padding):
one interpolation instead of one per op, so it is both faster and less blurry. Colour ops
then run in list order. Every random draw uses the optional ``generator`` (on the batch's
device), so an evaluation can replay exactly the same views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch.nn import functional as F

from replab.augment.registry import AUGMENTATIONS
from replab.errors import ConfigError


def warp(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Resample N×C×H×W ``x`` through [N, 3, 3] output-to-input maps (normalized frame)."""
    theta = matrices[:, :2, :].to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _name_and_params(component: Any, where: str) -> tuple[str, dict[str, Any]]:
    """``{"name": ..., **params}`` or an object with ``.name`` and
    ``.params`` (a spec Component)."""
    if isinstance(component, Mapping):
        params = dict(component)
        name = params.pop("name", None)
    else:
        name, params = getattr(component, "name", None), dict(getattr(component, "params", {}))
    if not isinstance(name, str):
        raise ConfigError(
            f"{where}: an augmentation needs a name",
            "write e.g. {name: horizontal_flip, "
            f"p: 0.5}}; known: {', '.join(AUGMENTATIONS.names())}",
        )
    return name, params


class Augment:
    """Apply ``ops`` (built augmentations) to a batch: fused geometry first, then colour."""

    def __init__(self, ops: Iterable[Any] = ()) -> None:
        self.ops = list(ops)
        # multi_crop is a plan of views, not a transform of one: ``views`` reads it
        plans = [op for op in self.ops if hasattr(op, "crop_matrices")]
        if len(plans) > 1:
            raise ConfigError(
                "augment lists multi_crop more than once", "keep one multi_crop entry"
            )
        self.multi_crop = plans[0] if plans else None
        ops = [op for op in self.ops if op is not self.multi_crop]
        self.geometric = [op for op in ops if hasattr(op, "matrices")]
        self.color = [op for op in ops if not hasattr(op, "matrices")]

    @classmethod
    def from_components(cls, components: Iterable[Any], where: str = "augment") -> Augment:
        ops = []
        for i, component in enumerate(components):
            at = f"{where}[{i}]"
            name, params = _name_and_params(component, at)
            try:
                ops.append(AUGMENTATIONS.build(name, params, where=at))
            except ConfigError as err:
                if err.problem.startswith(at):
                    raise
                raise ConfigError(f"{at} ({name!r}): {err.problem}", err.fix) from None
        return cls(ops)

    def matrix(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The [N, 3, 3] product of every geometric op's per-image map, in list order."""
        n, size = x.shape[0], tuple(x.shape[-2:])
        m = self.geometric[0].matrices(n, x.device, generator, size)
        for op in self.geometric[1:]:
            m = m @ op.matrices(n, x.device, generator, size)
        return m

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        crop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One view of the batch; ``crop`` ([N, 3, 3], a multi-crop view's) goes first."""
        if not x.is_floating_point() or x.ndim != 4:
            raise ValueError(
                "augmentations expect a float N×C×H×W batch, "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )
        if self.geometric:
            m = self.matrix(x, generator)
            x = warp(x, m if crop is None else crop @ m)
        elif crop is not None:
            x = warp(x, crop)
        for op in self.color:
            x = op(x, generator)
        return x

    @property
    def view_count(self) -> int:
        """Views ``views`` makes of each image: 2, or multi_crop's 2 + local crops."""
        return 2 if self.multi_crop is None else self.multi_crop.count

    def views(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Every view of the batch, each N×C×H×W: two augmented views, or with multi_crop the
        two global crops then the local ones."""
        if self.multi_crop is None:
            return [self(x, generator), self(x, generator)]
        n, size = x.shape[0], tuple(x.shape[-2:])
        return [
            self(x, generator, self.multi_crop.crop_matrices(v, n, x.device, generator, size))
            for v in range(self.multi_crop.count)
        ]

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"Augment({', '.join(type(op).__name__ for op in self.ops)})"
