"""A task around modules trained elsewhere: nothing is trained, the run only evaluates them.

``replab analyze`` wraps a user's encoder (and decoder, when given) in this task so the
evaluation steps every run uses — probes, reconstructions, the latent-space analysis — read
it as they read a trained task. It is not registered: a recipe cannot train it.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.models import AutoEncoder
from replab.tasks.base import Gather, Task


class Vectors(nn.Module):
    """The user's encoder, its output flattened to one vector per image (N x d)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.inner(x)
        if not isinstance(z, torch.Tensor) or z.ndim < 2:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise TypeError(f"maps a batch of {tuple(x.shape)} to {got}, not one vector per image")
        return z.flatten(1)


class EncoderOnly(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class Frozen(Task):
    """``model.encoder`` is the given encoder; ``model.decoder`` the given decoder, if any."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module | None = None) -> None:
        vectors = Vectors(encoder)
        model = AutoEncoder(vectors, decoder) if decoder is not None else EncoderOnly(vectors)
        super().__init__(model, nn.Identity())
        self.reconstructs = decoder is not None
        for p in model.parameters():
            p.requires_grad_(False)

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        raise TypeError("a Frozen task evaluates given modules; it has no training step")
