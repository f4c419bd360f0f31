"""Embed images so an anchor is nearer its positives than its negatives by a margin (study F2).

Triplets are mined in the batch (``mine_triplets``): every image is an anchor, with a
random same-class positive and a random other-class negative (``mining: random``, report
004's sampling) or its hardest positive and negative (``mining: batch_hard``). Anchors
whose class has no other image in the batch are skipped; ``anchor_share`` reports the
share of the batch that were anchors. The objective (``triplet``) sees the three
embeddings; ``triplet_accuracy`` is the share of mined triplets with d(a, p) < d(a, n).
The latent is the encoder's output (report 004: VGG-16-BN to d_out = 64).
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.objectives.triplet import MINING, TripletMarginLoss, mine_triplets
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_encoder
from replab.tasks.pairs import Embedding
from replab.tasks.registry import TASKS


@TASKS.register("triplet")
class Triplet(Task):
    objective_target = "triplets"
    options = ("mining",)
    objective: TripletMarginLoss  # the objective whose target is "triplets"

    def __init__(self, model: Embedding, objective, mining: str = "random") -> None:
        super().__init__(model, objective)
        self.mining = mining

    @classmethod
    def from_spec(
        cls,
        model: ModelSpec,
        objective,
        shape: tuple[int, ...],
        num_classes: int,
        augment=(),
        mining: str = "random",
    ) -> Triplet:
        if mining not in MINING:
            raise ConfigError(
                f"task.mining={mining!r} is not a triplet mining",
                f"use one of: {', '.join(MINING)}",
            )
        if model.head is not None or model.decoder is not None or model.projection is not None:
            raise ConfigError(
                "task 'triplet' trains the encoder's latent directly: "
                "it takes no model.head, decoder or projection",
                "remove them and set model.encoder.latent_dim "
                "to the embedding size (report 004: 64)",
            )
        return cls(
            Embedding(build_encoder(model.encoder, shape)), cls.build_objective(objective), mining
        )

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        z = model(x)
        a, p, n = mine_triplets(
            z, y, self.mining, self.batch_generator(x.device), squared=self.objective.squared
        )
        loss = self.objective(z[a], z[p], z[n])
        with torch.no_grad():
            d_ap, d_an = self.objective.distances(z[a], z[p], z[n])
            accuracy = (d_ap < d_an).float().mean() if len(a) else z.new_zeros(())
        return {
            "loss": loss,
            "triplet_accuracy": accuracy,
            "anchor_share": z.new_tensor(len(a) / max(len(x), 1)),
        }
