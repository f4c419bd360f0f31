"""Frozen-encoder embeddings and reconstructions, in large inference batches."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from replab.data import Normalizer


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
    """Latent vectors of ``images`` (uint8) through ``encoder`` in eval mode."""
    return batched_eval(
        encoder, images, batch_size, lambda b: encoder(normalizer(b.to(device))).float()
    )


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
