"""Frozen-encoder embeddings and reconstructions, in large inference batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from replab.data import Normalizer
from replab.errors import ConfigError, ReplabError
from replab.evaluation.reconstruction import ReconstructionMetrics

# What to do about an encoder whose output is not one row of finite numbers per image: the
# cause is the encoder's forward (the user's code, or a model that diverged), not the data.
VECTORS = (
    "make the encoder's forward return one vector per image, N x d for a batch of N "
    "(z.flatten(1) turns feature maps into vectors; do not reduce over the batch)"
)


@torch.inference_mode()
def batched_eval(
    module: nn.Module,
    inputs: torch.Tensor,
    batch_size: int,
    fn: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``fn`` over ``inputs`` in batches with ``module`` in eval mode;
    its mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        return torch.cat(
            [fn(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
        )
    finally:
        module.train(was_training)


def embed(
    encoder: nn.Module,
    images: torch.Tensor,
    normalizer: Normalizer,
    device: torch.device,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Latent vectors of ``images`` (uint8) through ``encoder`` in eval mode: N x d finite
    floats, every batch as wide as the first, else one ``ReplabError`` naming the output."""
    if len(images) == 0:
        raise ReplabError(
            f"there are no images to embed (a tensor of shape {tuple(images.shape)})",
            "pass at least one image, N x C x H x W with N >= 1",
        )
    first: list[int] = []  # the first batch's width, which every later one must match

    def one(batch: torch.Tensor) -> torch.Tensor:
        z = checked_latents(encoder(normalizer(batch.to(device))), batch)
        first[:] = first or [int(z.shape[1])]
        check_width(first[0], z, batch)
        return z.float()

    return batched_eval(encoder, images, batch_size, one)


@torch.inference_mode()
def embed_stream(
    encoder: nn.Module, batches: Iterable, normalizer: Normalizer, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and labels of a streamed split in one pass over ``batches`` (normalised
    ``(x, y)`` on ``device``), ``encoder`` in eval mode: the streamed form of ``embed``."""
    was_training = encoder.training
    encoder.eval()
    zs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    try:
        for x, y in batches:
            z = checked_latents(encoder(x), x)
            check_width(int(zs[0].shape[1]) if zs else int(z.shape[1]), z, x)
            zs.append(z.float())
            ys.append(y.cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(zs), torch.cat(ys)


@torch.inference_mode()
def streamed_reconstruction_metrics(
    model: nn.Module, batches: Iterable, normalizer: Normalizer, device: torch.device
) -> ReconstructionMetrics:
    """``reconstruction_metrics`` of every image of a streamed split, accumulated a batch at
    a time (normalised ``(x, y)`` batches): the same means over pixels and over images."""
    was_training = model.training
    model.eval()
    abs_sum = sq_sum = psnr_sum = 0.0
    pixels = images = 0
    try:
        for x, _ in batches:
            diff = normalizer.invert(model(x)).float().clamp(0, 1) - normalizer.invert(x)
            abs_sum += diff.abs().sum().item()
            sq_sum += diff.pow(2).sum().item()
            per_image = diff.pow(2).flatten(1).mean(1).clamp_min(1e-10)
            psnr_sum += (-10 * torch.log10(per_image)).sum().item()
            pixels, images = pixels + diff.numel(), images + len(x)
    finally:
        model.train(was_training)
    return ReconstructionMetrics(mae=abs_sum / pixels, mse=sq_sum / pixels, psnr=psnr_sum / images)


def check_width(width: int, z: torch.Tensor, batch: torch.Tensor) -> None:
    """Refuse ``z``, an encoder's vectors for ``batch``, unless they are ``width`` wide (the
    width of its first output)."""
    if z.shape[1] != width:
        raise ReplabError(
            f"the encoder's vectors are {width} wide for its first batch of images but "
            f"{z.shape[1]} wide for a batch {tuple(batch.shape)}",
            "make the encoder return vectors of one width d whatever the batch "
            "(no size that depends on N or on the batch's contents)",
        )


def checked_latents(z: object, batch: torch.Tensor) -> torch.Tensor:
    """``z``, what an encoder returned for ``batch``, refused unless it is a tensor of one
    row of finite numbers per image."""
    n, shape = len(batch), tuple(batch.shape)
    if not isinstance(z, torch.Tensor):
        raise ReplabError(
            f"the encoder returned a {type(z).__name__} for a batch of images {shape}, "
            "not a tensor",
            VECTORS,
        )
    if z.ndim != 2 or len(z) != n:
        raise ReplabError(
            f"the encoder maps a batch of images {shape} to a tensor {tuple(z.shape)}, "
            f"not {n} x d (one vector per image)",
            VECTORS,
        )
    if z.is_floating_point() or z.is_complex():
        finite = torch.isfinite(z).all(1)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ReplabError(
                f"the encoder's output holds NaN or infinite values for {bad} of the {n} "
                f"images of a batch {shape} (first at image {int((~finite).nonzero()[0])})",
                "fix the encoder's forward for these images (a division by zero, the log or "
                "square root of a negative, NaN weights): probes and distances need finite "
                "vectors",
            )
    return z


def reconstruct(
    model: nn.Module,
    images: torch.Tensor,
    normalizer: Normalizer,
    device: torch.device,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Reconstructions of ``images`` in [0, 1] pixel space."""
    return batched_eval(
        model,
        images,
        batch_size,
        lambda b: normalizer.invert(model(normalizer(b.to(device)))).float().clamp(0, 1),
    )


class GivenEncoder(nn.Module):
    """An encoder trained elsewhere (``replab analyze``), checked on every batch: what it
    raises, and an output that is not one finite vector per image (feature maps are
    flattened) of the width of its first, is one ``ReplabError`` naming the encoder, never a
    failure further on."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder
        self.width: int | None = None  # of the first output, which every later one must match

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            z = self.inner(x)
        except ReplabError:
            raise
        except Exception as err:
            first = (str(err).splitlines() or [""])[0][:300]
            raise ConfigError(
                f"the given encoder cannot take this dataset's images {tuple(x.shape)}: "
                f"{type(err).__name__}: {first}",
                "analyse it on data of the shape it was trained on (data.dataset, "
                "data.channels, data.image_size), or fix its forward so that it maps any batch "
                "of N x C x H x W images to N vectors",
            ) from err
        if isinstance(z, torch.Tensor) and z.ndim > 2 and len(z) == len(x):
            z = z.flatten(1)  # feature maps: one vector per image, as documented
        z = checked_latents(z, x)
        self.width = self.width or int(z.shape[1])
        check_width(self.width, z, x)
        return z
