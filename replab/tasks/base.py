"""What a task is: a model built from the spec and a step that turns a batch into metrics."""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import MODELS
from replab.objectives import OBJECTIVES
from replab.spec import Component


class Task:
    """Builds ``self.model`` and computes ``step(x, y) -> {'loss': ..., other metrics}``.

    Every metric is a scalar tensor averaged over the batch; the trainer weights them by
    batch size, so epoch figures are exact means over the split.
    """

    objective_target = ""  # the kind of objective this task accepts ("input" or "label")

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        self.model = model
        self.objective = objective
        self.frozen: list[str] = []

    def train_mode(self) -> None:
        """Training mode, except frozen parts: their dropout and batch-norm statistics stay fixed too."""
        self.model.train()
        for name in self.frozen:
            getattr(self.model, name).eval()

    @classmethod
    def build_objective(cls, component: Component) -> nn.Module:
        objective = OBJECTIVES.build(component.name, component.params, where="objective")
        if getattr(objective, "target", None) != cls.objective_target:
            fitting = [n for n in OBJECTIVES.names() if getattr(OBJECTIVES.get(n), "target", None) == cls.objective_target]
            raise ConfigError(
                f"objective {component.name!r} compares against the {objective.target}, which does not fit this task",
                f"use one of: {', '.join(fitting)}",
            )
        return objective

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder


def build_encoder(component: Component, in_shape: tuple[int, ...]) -> nn.Module:
    return MODELS.build(component.name, component.params, where="model.encoder", in_shape=tuple(in_shape))


def build_head(component: Component, in_dim: int, num_classes: int, where: str = "model.head") -> nn.Module:
    return MODELS.build(component.name, component.params, where=where, in_dim=in_dim, num_classes=num_classes)
