"""Geometric augmentations as per-image affine matrices, so a pipeline resamples once.

Each op returns ``matrices(n, device, generator, size) -> Tensor[n, 3, 3]``: for every image
the map from *output* to *input* coordinates in ``affine_grid``'s normalized frame
([-1, 1] across the image, align_corners=False). Maps compose by matrix product, so any
chain of crops, flips, rotations and affines costs one ``grid_sample`` for the whole batch
(the trick kornia and airbench use) instead of one interpolation per op.

Rotations and shears are defined in pixel space and conjugated into the normalized frame,
so they stay true rotations on non-square images. ``size`` is the image's (H, W); None
means square.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from replab.augment.registry import AUGMENTATIONS
from replab.errors import ConfigError


def uniform(
    low: float, high: float, shape: int | tuple[int, ...], device, generator
) -> torch.Tensor:
    """``shape`` draws uniform in [low, high] (float32) on ``device``."""
    shape = (shape,) if isinstance(shape, int) else shape
    return low + (high - low) * torch.rand(shape, device=device, generator=generator)


def check_range(value, name: str, minimum: float | None = None) -> tuple[float, float]:
    """A [low, high] pair from the recipe, or a ConfigError saying what to write."""
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or pair[0] > pair[1] or (minimum is not None and pair[0] < minimum):
        floor = f" with low >= {minimum}" if minimum is not None else ""
        raise ConfigError(
            f"{name} must be a [low, high] pair{floor} (got {list(value)})",
            f"write e.g. {name}: [low, high]",
        )
    return pair


def _identity(n: int, device) -> torch.Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)


def _aspect(size: tuple[int, int] | None) -> float:
    """Width over height."""
    return 1.0 if size is None else size[1] / size[0]


def to_normalized(linear: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """[n, 3, 3] normalized-frame matrices from [n, 2, 2] output-to-input maps in pixel space."""
    a = _aspect(size)
    m = _identity(linear.shape[0], linear.device)
    m[:, :2, :2] = linear
    m[:, 0, 1] = linear[:, 0, 1] / a  # D^-1 L D with D = diag(W/2, H/2)
    m[:, 1, 0] = linear[:, 1, 0] * a
    return m


def rotation_matrix(degrees: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Rotate each image counter-clockwise by ``degrees`` (one per image) about its centre."""
    rad = degrees.float() * (math.pi / 180)
    c, s = rad.cos(), rad.sin()
    # Counter-clockwise on screen (y down) moves input p to [[c, s], [-s, c]] p;
    # sample with the inverse.
    linear = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return to_normalized(linear, size)


@AUGMENTATIONS.register("random_resized_crop")
class RandomResizedCrop:
    """Crop a random area fraction in ``scale`` with aspect ratio (w/h) in ``ratio``, resized
    back to the full image (torchvision's semantics: log-uniform ratio, 10 tries, then a
    centre crop with the ratio clamped). The crop is continuous, not snapped to pixels."""

    tries = 10

    def __init__(
        self, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3)
    ) -> None:
        self.scale = check_range(scale, "scale", minimum=1e-4)
        self.ratio = check_range(ratio, "ratio", minimum=1e-6)
        if self.scale[1] > 1:
            raise ConfigError(
                f"scale is an area fraction, at most 1 (got {list(scale)})",
                "write e.g. scale: [0.08, 1.0]",
            )

    def matrices(self, n: int, device, generator=None, size=None) -> torch.Tensor:
        a = _aspect(size)
        area = uniform(*self.scale, (n, self.tries), device, generator)
        log_ratio = math.log(self.ratio[0]), math.log(self.ratio[1])
        r = uniform(*log_ratio, (n, self.tries), device, generator).exp()
        fw, fh = (area * r / a).sqrt(), (area * a / r).sqrt()  # width, height as fractions
        valid = (fw <= 1) & (fh <= 1)
        first = valid.int().argmax(1, keepdim=True)
        clamped = min(max(a, self.ratio[0]), self.ratio[1])
        found = valid.any(1)
        fw = torch.where(found, fw.gather(1, first)[:, 0], min(1.0, clamped / a))
        fh = torch.where(found, fh.gather(1, first)[:, 0], min(1.0, a / clamped))
        m = _identity(n, device)
        m[:, 0, 0], m[:, 1, 1] = fw, fh
        centre = uniform(-1.0, 1.0, (2, n), device, generator) * found  # the fallback is centred
        m[:, 0, 2], m[:, 1, 2] = (1 - fw) * centre[0], (1 - fh) * centre[1]
        return m


@AUGMENTATIONS.register("horizontal_flip")
class HorizontalFlip:
    """Mirror left-right with probability ``p`` per image."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ConfigError(f"p is a probability, in [0, 1] (got {p})", "write e.g. p: 0.5")
        self.p = p

    def matrices(self, n: int, device, generator=None, size=None) -> torch.Tensor:
        flip = torch.rand(n, device=device, generator=generator) < self.p
        m = _identity(n, device)
        m[:, 0, 0] = 1 - 2 * flip.float()
        return m


@AUGMENTATIONS.register("rotation")
class Rotation:
    """Rotate by an angle uniform in [-degrees, degrees], or in [low, high] given a pair;
    corners brought in from outside the image are zeros."""

    def __init__(self, degrees: float | list[float] = 10.0) -> None:
        if isinstance(degrees, (int, float)):
            if degrees < 0:
                raise ConfigError(
                    f"degrees must be >= 0 (got {degrees})",
                    "write e.g. degrees: 15, or a [low, high] pair",
                )
            self.degrees = check_range((-degrees, degrees), "degrees")
        else:
            self.degrees = check_range(degrees, "degrees")

    def matrices(self, n: int, device, generator=None, size=None) -> torch.Tensor:
        return rotation_matrix(uniform(*self.degrees, n, device, generator), size)


@AUGMENTATIONS.register("affine")
class Affine:
    """Random translation (up to ``translate`` of the width / height each way), isotropic
    ``scale`` (a [low, high] range, >1 zooms in) and x-shear up to ``shear`` degrees."""

    def __init__(
        self, translate: float = 0.1, scale: Sequence[float] = (0.9, 1.1), shear: float = 0.0
    ) -> None:
        if not 0 <= translate <= 1:
            raise ConfigError(
                f"translate is a fraction of the image, in [0, 1] (got {translate})",
                "write e.g. translate: 0.1",
            )
        if not 0 <= shear < 90:
            raise ConfigError(
                f"shear is in degrees, in [0, 90) (got {shear})", "write e.g. shear: 10"
            )
        self.translate, self.shear = translate, shear
        self.scale = check_range(scale, "scale", minimum=1e-3)

    def matrices(self, n: int, device, generator=None, size=None) -> torch.Tensor:
        inv_scale = 1 / uniform(*self.scale, n, device, generator)
        tan = uniform(-self.shear, self.shear, n, device, generator).mul(math.pi / 180).tan()
        zero = torch.zeros_like(tan)
        # Forward map s * [[1, tan], [0, 1]]; sample with its inverse.
        linear = inv_scale[:, None, None] * torch.stack(
            [torch.stack([1 + zero, -tan], -1), torch.stack([zero, 1 + zero], -1)], -2
        )
        m = to_normalized(linear, size)
        # normalized units
        shift = 2 * uniform(-self.translate, self.translate, (n, 2, 1), device, generator)
        m[:, :2, 2:] = -m[:, :2, :2] @ shift
        return m
