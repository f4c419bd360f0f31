"""Predict the label from the encoder's latent (studies A2, C1, probes, linear baselines)."""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import Classifier
from replab.models.layers import latent_dim_of
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_encoder, build_head
from replab.tasks.registry import TASKS


@TASKS.register("classify")
class Classify(Task):
    classifies = True
    objective_target = "label"

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> Classify:
        if model.head is None:
            raise ConfigError(
                "task 'classify' needs model.head",
                "add e.g. `head: {name: mlp_head, hidden: [64]}` under model",
            )
        encoder = build_encoder(model.encoder, shape)
        head = build_head(model.head, latent_dim_of(encoder), num_classes)
        return cls(Classifier(encoder, head), cls.build_objective(objective))

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        logits = model(x)
        loss = self.objective(logits, y)
        return {"loss": loss, "accuracy": (predicted_labels(logits.detach()) == y).float().mean()}


def predicted_labels(scores: torch.Tensor) -> torch.Tensor:
    """Class indices from a classifier's output: argmax over columns, or for ONE score per
    image (binary SVM, logistic regression) the second class where the score is positive."""
    if scores.ndim == 1 or scores.shape[1] == 1:
        return (scores.view(-1) > 0).long()
    return scores.argmax(1)
