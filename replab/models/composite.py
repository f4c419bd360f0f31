"""Encoders combined with decoders or heads; tasks build these."""

from __future__ import annotations

import torch
from torch import nn

from replab.models.momentum import Momentum


class AutoEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class Projected(nn.Module):
    """An encoder followed by a projection head (SimCLR): the loss sees the projection."""

    def __init__(self, encoder: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projection = encoder, projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.encoder(x))


class Predicted(nn.Module):
    """An encoder, a projection and a predictor over one input, no momentum copy (SimSiam):
    ``forward`` gives ``(predictions, projections)``; the loss stops the projections' gradient
    itself."""

    def __init__(self, encoder: nn.Module, projection: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projection, self.predictor = encoder, projection, predictor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projection(self.encoder(x))
        return self.predictor(z), z


class MomentumProjected(nn.Module):
    """Two branches over one input (BYOL, MoCo): the online encoder, projection and predictor,
    and a momentum copy of encoder and projection (``target``, updated by EMA, never trained).
    ``forward`` gives ``(online predictions, target projections)``; probes see the online
    encoder, the one the gradients trained."""

    def __init__(self, encoder: nn.Module, projection: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.encoder, self.projection, self.predictor = encoder, projection, predictor
        self.target = Momentum(Projected(encoder, projection))

    def forward(
        self, x: torch.Tensor, target_rows: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``target_rows``: the target sees only the first rows (multi-crop: DINO's teacher
        takes the two global crops, the student every crop)."""
        online = self.predictor(self.projection(self.encoder(x)))
        return online, self.target(x if target_rows is None else x[:target_rows])


class Identity(nn.Module):
    """The encoder of a probe trained on precomputed latents."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
