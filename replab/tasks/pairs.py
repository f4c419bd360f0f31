"""Embed images so same-class pairs are close and different-class pairs far (study C4).

Pairs come from the batch and a random permutation of it (report 001, problem 6); the
objective (``pair_margin``) sees both embeddings and the same-class flag.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.objectives.pair_margin import PairMarginLoss, permuted_pairs
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_encoder
from replab.tasks.registry import TASKS


class Embedding(torch.nn.Module):
    """The encoder alone: its latent is the embedding the loss shapes."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


@TASKS.register("pairs")
class Pairs(Task):
    objective_target = "pairs"
    objective: PairMarginLoss  # the objective whose target is "pairs"

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> Pairs:
        if model.head is not None or model.decoder is not None:
            raise ConfigError(
                "task 'pairs' trains the encoder's latent directly: "
                "it takes no model.head or model.decoder",
                "remove them and set model.encoder.latent_dim to the embedding size (2 for a plot)",
            )
        return cls(Embedding(build_encoder(model.encoder, shape)), cls.build_objective(objective))

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        z_a, z_b, same = permuted_pairs(model(x), y, self.batch_generator(x.device))
        loss = self.objective(z_a, z_b, same)
        d2 = (z_a - z_b).detach().pow(2).sum(1)
        # Share of pairs on the right side of the margin's midpoint: same-class
        # closer than M/2, others farther.
        right = torch.where(same, d2 < self.objective.margin / 2, d2 >= self.objective.margin / 2)
        return {"loss": loss, "pair_accuracy": right.float().mean()}
