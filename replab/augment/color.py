"""Colour augmentations on the whole batch, with per-image factors drawn as tensors.

``color_jitter`` follows torchvision's ColorJitter (brightness, contrast, saturation, hue,
each a blend clamped to [0, 1]) in a fixed order for the whole batch rather than a random
order per image. Hue shifts go through a batched RGB→HSV→RGB round trip that only
computes the hue (value and chroma are unchanged). Inputs are expected in [0, 1]
(``normalize: unit``).

Saturation, hue and grayscale have no meaning without three colour channels: on 1-channel
(or other non-RGB) images they are no-ops, so a single recipe can serve MNIST and CIFAR.
"""

from __future__ import annotations

import torch

from replab.augment.geometric import uniform
from replab.augment.registry import AUGMENTATIONS
from replab.errors import ConfigError

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def luma(x: torch.Tensor) -> torch.Tensor:
    """N×1×H×W brightness: BT.601 luma for RGB, the channel mean otherwise."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    weights = torch.tensor(LUMA, device=x.device, dtype=x.dtype)
    return torch.einsum("c,nchw->nhw", weights, x).unsqueeze(1)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * x + (1 - factor) * other`` per image, clamped to [0, 1]."""
    f = factor.to(x.dtype).view(-1, 1, 1, 1)
    return (f * x + (1 - f) * other).clamp(0, 1)


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Add ``shift`` turns (one per image) to the HSV hue of RGB ``x``,
    as torchvision's adjust_hue."""
    r, g, b = x.unbind(1)
    high, low = x.amax(1), x.amin(1)
    chroma = high - low
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    sector = torch.where(
        high == r,
        ((g - b) / safe) % 6,
        torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    hue6 = (sector + 6 * shift.to(x.dtype).view(-1, 1, 1)) % 6  # hue in sixths of a turn
    # Back to RGB: channel n in (5, 3, 1) is V - C * clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6.
    k = (
        torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        + hue6.unsqueeze(1)
    ) % 6
    return high.unsqueeze(1) - chroma.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def _factor_range(value: float, name: str) -> tuple[float, float]:
    if value < 0:
        raise ConfigError(
            f"{name} must be >= 0 (got {value})", f"write e.g. {name}: 0.4, or 0 to turn it off"
        )
    return max(0.0, 1 - value), 1 + value


def _probability(p: float) -> float:
    if not 0 <= p <= 1:
        raise ConfigError(f"p is a probability, in [0, 1] (got {p})", "write e.g. p: 0.8")
    return p


@AUGMENTATIONS.register("color_jitter")
class ColorJitter:
    """With probability ``p`` per image, scale brightness, contrast and saturation by factors
    uniform in [1 - v, 1 + v] and shift hue by up to ``hue`` turns (at most 0.5)."""

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        p: float = 0.8,
    ) -> None:
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        if not 0 <= hue <= 0.5:
            raise ConfigError(
                f"hue is a fraction of a turn, in [0, 0.5] (got {hue})", "write e.g. hue: 0.1"
            )
        self.hue, self.p = hue, _probability(p)

    def __call__(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        n, device = x.shape[0], x.device
        apply = torch.rand(n, device=device, generator=generator) < self.p
        b, c, s = (
            uniform(*r, n, device, generator)
            for r in (self.brightness, self.contrast, self.saturation)
        )
        h = uniform(-self.hue, self.hue, n, device, generator)
        out = (x * b.to(x.dtype).view(-1, 1, 1, 1)).clamp(0, 1)
        out = _blend(out, luma(out).mean((1, 2, 3), keepdim=True), c)
        if x.shape[1] == 3:  # no chroma to change otherwise
            out = _blend(out, luma(out), s)
            out = shift_hue(out, h)
        return torch.where(apply.view(-1, 1, 1, 1), out, x)


@AUGMENTATIONS.register("grayscale")
class Grayscale:
    """With probability ``p`` per image, replace RGB by its BT.601 luma in all three channels."""

    def __init__(self, p: float = 0.2) -> None:
        self.p = _probability(p)

    def __call__(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        apply = torch.rand(x.shape[0], device=x.device, generator=generator) < self.p
        if x.shape[1] != 3:  # already gray
            return x
        return torch.where(apply.view(-1, 1, 1, 1), luma(x).expand_as(x), x)
