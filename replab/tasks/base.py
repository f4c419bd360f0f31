"""What a task is: a model built from the spec and a step that turns a batch into metrics."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import MODELS
from replab.objectives import OBJECTIVES
from replab.spec import Component

EVAL_SEED = 20_240_613
Gather = Callable[[torch.Tensor], torch.Tensor]
# run by the trainer after every optimizer step with (steps done, the run's total steps)
TaskStepHook = Callable[[int, int], None]


class Task:
    """Builds ``self.model`` and computes ``step(x, y) -> {'loss': ..., other metrics}``.

    Every metric is a scalar tensor averaged over the batch; the trainer weights them by
    batch size, so epoch figures are exact means over the split.
    """

    objective_target = ""  # the kind of objective this task accepts ("input" or "label")
    # The facts a run reads from the task itself, so a new task is one file: whether it trains
    # on labels (a label-free task may train on an unlabelled split: autoencode, contrastive,
    # rotation...), whether the model itself predicts the dataset's classes (a run then
    # reports the classifier's own per-class scores and confusion matrix), and which submodule
    # gives the latent that the probes, kNN and the analysis read.
    needs_labels = True
    classifies = False
    representation = "encoder"
    # the task's own settings (``task: {name: rotation, angles: [0, 90]}``)
    options: tuple[str, ...] = ()
    # the model maps images to images: a run reports test reconstructions (autoencode, vae)
    reconstructs = False
    # the decoder was trained against N(0, I): the analysis samples the prior (vae)
    has_prior = False
    # an example's loss depends on the others in its batch (in-batch negatives, batch
    # statistics): validation and test run in batches of the training size, so their losses
    # compare with the training loss, and an evaluation step costs what a training step does
    in_batch = False

    def __init__(self, model: nn.Module, objective: nn.Module) -> None:
        self.model = model
        self.objective = objective
        self.frozen: list[str] = []
        self._eval_generator: torch.Generator | None = None
        self._was_training = True

    def train_mode(self) -> None:
        """Training mode, except frozen parts: their dropout and
        batch-norm statistics stay fixed too."""
        self.model.train()
        for name in self.frozen:
            self.model.get_submodule(name).eval()

    def batch_generator(self, device: torch.device) -> torch.Generator | None:
        """Where a step's random choices (views, rotations, pairs) come from.

        Training draws from the global RNG, which the checkpoint saves. Each evaluation pass
        replays one seeded stream, so validation figures change only when the model does and
        early stopping does not chase noise.
        """
        if self.model.training:
            self._was_training = True
            return None
        if (
            self._was_training
            or self._eval_generator is None
            or self._eval_generator.device != device
        ):
            self._eval_generator = torch.Generator(device=device).manual_seed(EVAL_SEED)
            self._was_training = False
        return self._eval_generator

    @classmethod
    def build_objective(cls, component: Component) -> nn.Module:
        objective = OBJECTIVES.build(component.name, component.params, where="objective")
        if getattr(objective, "target", None) != cls.objective_target:
            fitting = [
                n
                for n in OBJECTIVES.names()
                if getattr(OBJECTIVES.get(n), "target", None) == cls.objective_target
            ]
            raise ConfigError(
                f"objective {component.name!r} compares against the {objective.target}, "
                "which does not fit this task",
                f"use one of: {', '.join(fitting)}",
            )
        return objective

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        model: nn.Module | None = None,
        gather: Gather | None = None,
    ) -> dict[str, torch.Tensor]:
        """The batch's metrics through ``model`` (default ``self.model``).

        The trainer passes the module it trains (compiled, or wrapped for DDP) and, across
        processes, ``gather`` (this rank's rows -> every rank's rows, for losses whose
        negatives span the global batch); the task itself is never changed.
        """
        return self.compute(self.model if model is None else model, x, y, gather)

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def step_hooks(self) -> list[TaskStepHook]:
        """Work after every optimizer step that belongs to the method (a momentum copy's EMA
        update); the trainer runs these before its own ``step_hooks``."""
        return []

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The task's state beyond the model's weights: the objective's buffers (MoCo's queue
        of keys). The trainer checkpoints it, so a resumed run continues exactly."""
        return dict(self.objective.state_dict())

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.objective.load_state_dict(state)

    @property
    def encoder(self) -> nn.Module:
        """The module whose output is the latent (``representation``)."""
        return self.model.get_submodule(self.representation)


def task_options(cls: type[Task], task: Component) -> dict:
    unknown = sorted(set(task.params) - set(cls.options))
    if unknown:
        valid = ", ".join(cls.options) or "none"
        raise ConfigError(
            f"task {task.name!r} has no option {unknown[0]!r}", f"options of {task.name!r}: {valid}"
        )
    return task.params


def build_encoder(component: Component, in_shape: tuple[int, ...]) -> nn.Module:
    return MODELS.build(
        component.name, component.params, where="model.encoder", in_shape=tuple(in_shape)
    )


def build_decoder(component: Component, encoder: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """A decoder back to images of ``shape``; conv decoders mirror the encoder,
    tied ones share its weights."""
    return MODELS.build(
        component.name,
        component.params,
        where="model.decoder",
        latent_dim=encoder.latent_dim,
        out_shape=tuple(shape),
        feature_shape=getattr(encoder, "feature_shape", None),
        mirror=getattr(encoder, "spec", None),
        encoder=encoder,
    )


def build_head(
    component: Component, in_dim: int, num_classes: int, where: str = "model.head"
) -> nn.Module:
    return MODELS.build(
        component.name, component.params, where=where, in_dim=in_dim, num_classes=num_classes
    )
