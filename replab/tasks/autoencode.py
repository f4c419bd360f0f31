"""Reconstruct the input through a bottleneck (studies A1, B, D3-D4, E1)."""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import AutoEncoder
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_decoder, build_encoder
from replab.tasks.registry import TASKS


@TASKS.register("autoencode")
class Autoencode(Task):
    needs_labels = False
    objective_target = "input"
    reconstructs = True

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> Autoencode:
        if model.decoder is None:
            raise ConfigError(
                "task 'autoencode' needs model.decoder",
                "add e.g. `decoder: {name: mlp_decoder, hidden: [256]}` under model",
            )
        encoder = build_encoder(model.encoder, shape)
        decoder = build_decoder(model.decoder, encoder, shape)
        return cls(AutoEncoder(encoder, decoder), cls.build_objective(objective))

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        reconstruction = model(x)
        loss = self.objective(reconstruction, x)
        return {"loss": loss, "mae": (reconstruction.detach() - x).abs().mean()}
