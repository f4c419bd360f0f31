"""Reconstruct the clean image from a corrupted one: the denoising autoencoder.

Vincent, Larochelle, Bengio and Manzagol, "Extracting and composing robust features with
denoising autoencoders", ICML 2008. Each training image is corrupted afresh, per pixel, on the
device: Gaussian noise of standard deviation ``noise`` (in the normalised pixel units the
model sees) is added, and a fraction ``mask`` of the pixels is set to zero (the paper's
masking noise); the loss compares the reconstruction of the corrupted image with the clean
one. A latent that must undo the corruption keeps what the images share rather than each
pixel. Evaluation corrupts with one seeded stream, so validation changes only with the model.

``replab run digits-autoencoder "task={name: denoise, noise: 0.3, mask: 0.2}"``.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.spec import ModelSpec
from replab.tasks.autoencode import Autoencode
from replab.tasks.base import Gather
from replab.tasks.registry import TASKS


@TASKS.register("denoise")
class Denoise(Autoencode):
    options = ("noise", "mask")

    def __init__(self, model: nn.Module, objective: nn.Module, noise: float, mask: float) -> None:
        super().__init__(model, objective)
        self.noise = noise
        self.mask = mask

    @classmethod
    def from_spec(
        cls,
        model: ModelSpec,
        objective,
        shape: tuple[int, ...],
        num_classes: int,
        augment=(),
        noise: float = 0.3,
        mask: float = 0.0,
    ) -> Denoise:
        for key, value, top in (("noise", noise, float("inf")), ("mask", mask, 1.0)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value < top
            ):
                raise ConfigError(
                    f"task.{key}={value!r} is not a number in [0, {top})",
                    "e.g. task={name: denoise, noise: 0.3, mask: 0.2}",
                )
        if noise == 0 and mask == 0:
            raise ConfigError(
                "task denoise with noise=0 and mask=0 corrupts nothing",
                "set task.noise (e.g. 0.3) or task.mask (e.g. 0.2), or use task=autoencode",
            )
        plain = Autoencode.from_spec(model, objective, shape, num_classes, augment)
        return cls(plain.model, plain.objective, float(noise), float(mask))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with Gaussian noise added and a ``mask`` share of its pixels zeroed."""
        generator = self.batch_generator(x.device)
        noisy = x
        if self.noise:
            eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            noisy = noisy + self.noise * eps
        if self.mask:
            keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.mask
            noisy = noisy * keep
        return noisy

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        reconstruction = model(self.corrupt(x))
        loss = self.objective(reconstruction, x)
        return {"loss": loss, "mae": (reconstruction.detach() - x).abs().mean()}
