"""Frozen-encoder embeddings and reconstructions, in large inference batches."""

from __future__ import annotations

import torch
from torch import nn

from replab.data import Normalizer


@torch.inference_mode()
def embed(encoder: nn.Module, images: torch.Tensor, normalizer: Normalizer, device: torch.device, batch_size: int = 4096) -> torch.Tensor:
    """Latent vectors of ``images`` (uint8) through ``encoder`` in eval mode."""
    was_training = encoder.training
    encoder.eval()
    out = [encoder(normalizer(images[i : i + batch_size].to(device))).float() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


@torch.inference_mode()
def reconstruct(model: nn.Module, images: torch.Tensor, normalizer: Normalizer, device: torch.device, batch_size: int = 4096) -> torch.Tensor:
    """Reconstructions of ``images`` in [0, 1] pixel space."""
    was_training = model.training
    model.eval()
    out = [normalizer.invert(model(normalizer(images[i : i + batch_size].to(device)))).float().clamp(0, 1) for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out)
