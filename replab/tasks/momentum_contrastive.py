"""Learn a latent from two views with an online network and a momentum copy of it (BYOL,
MoCo v2).

The model is the contrastive task's encoder and projection, an optional predictor after
them (``model.predictor``: BYOL's; none for MoCo) and ``target``, a momentum copy of
encoder and projection (``replab.models.Momentum``). The objective compares the online
outputs of both views with the target's projections of both views; after every optimizer
step the task's step hook moves the target towards the online weights with the objective's
``momentum`` on its ``momentum_schedule`` (BYOL's cosine from base to 1 over the run's steps,
or MoCo's constant). An objective with state of its own (MoCo's queue, DINO's centre) keeps
it in buffers; the trainer saves them with the model. An objective with a ``step_hook`` (DINO's
teacher-temperature schedule) is told every step's place in the run.

With ``multi_crop`` in the augment list, the online network sees every crop and the target the
two global ones; only an objective that takes the local crops (``takes_local_crops``: DINO)
can be trained so, the others are refused (MoCo's queue and BYOL's pairs are of two views).
"""

from __future__ import annotations

import torch
from torch import nn

from replab.augment import Augment
from replab.errors import ConfigError
from replab.models import MODELS, MomentumProjected, momentum_at
from replab.models.layers import latent_dim_of
from replab.spec import Component, ModelSpec
from replab.tasks.base import Gather, Task, TaskStepHook, build_encoder
from replab.tasks.contrastive import pair_accuracy
from replab.tasks.registry import TASKS


@TASKS.register("momentum_contrastive")
class MomentumContrastive(Task):
    needs_labels = False
    objective_target = "momentum"
    model: MomentumProjected

    def __init__(self, model: MomentumProjected, objective, augment: Augment) -> None:
        super().__init__(model, objective)
        self.augment = augment
        # how the target follows: a setting of the method, so its objective declares it
        self.momentum: float = objective.momentum
        self.schedule: str = objective.momentum_schedule

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> MomentumContrastive:
        _check(model, augment)
        assert model.projection is not None  # _check said so
        loss = cls.build_objective(objective)
        views = Augment.from_components(augment)
        if views.view_count > 2 and not getattr(loss, "takes_local_crops", False):
            raise ConfigError(
                f"objective {objective.name!r} compares two views; multi_crop's local crops "
                "are for an objective that takes them (dino)",
                "drop multi_crop from augment (or set its local_crops: 0), or use objective dino",
            )
        encoder = build_encoder(model.encoder, shape)
        projection = _head(model.projection, latent_dim_of(encoder), "model.projection")
        width = _width(projection, latent_dim_of(encoder))
        predictor = (
            _head(model.predictor, width, "model.predictor") if model.predictor else nn.Identity()
        )
        allocate = getattr(loss, "allocate", None)
        if allocate is not None:  # state sized by the projection (MoCo's queue, DINO's centre)
            allocate(width)
        return cls(MomentumProjected(encoder, projection, predictor), loss, views)

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        views = self.augment.views(x, self.batch_generator(x.device))
        # (N * views, d) online outputs of every crop; the target's of the two global crops
        online, target = model(torch.cat(views), target_rows=2 * len(x))
        p1, p2, *local = online.chunk(len(views))
        z1, z2 = target.chunk(2)
        # stateful objectives (MoCo's queue) change only while training, not on validation
        self.objective.train(self.model.training)
        extra = {"local": local} if local else {}
        loss = self.objective(p1, p2, z1, z2, gather=gather, **extra)
        return {"loss": loss, "pair_accuracy": pair_accuracy(p1.detach(), p2.detach())}

    def step_hooks(self) -> list[TaskStepHook]:
        own = getattr(self.objective, "step_hook", None)  # a schedule of the objective's
        return [self._update_target, *([own] if own is not None else [])]

    def _update_target(self, done: int, total: int) -> None:
        """After optimizer step ``done`` of ``total``: the EMA step with the momentum of the
        step before it, so the first update uses the base momentum."""
        self.model.target.update(momentum_at(self.momentum, done - 1, total, self.schedule))


def _check(model: ModelSpec, augment) -> None:
    if model.projection is None:
        raise ConfigError(
            "task 'momentum_contrastive' needs model.projection",
            "add e.g. `projection: {name: projection_head, hidden: [512], out_dim: 128}` "
            "under model",
        )
    if not augment:
        raise ConfigError(
            "task 'momentum_contrastive' needs an augment list: two views of one image must differ",
            "add e.g. `augment: [{name: random_resized_crop, scale: [0.2, 1.0]}, "
            "{name: horizontal_flip}]`",
        )


def _head(component: Component, in_dim: int, where: str) -> nn.Module:
    return MODELS.build(component.name, component.params, where=where, in_dim=in_dim)


def _width(head: nn.Module, in_dim: int) -> int:
    """The head's output width: its ``out_dim``, or measured on one zero row."""
    if isinstance(getattr(head, "out_dim", None), int):
        return head.out_dim  # type: ignore[return-value]
    was = head.training
    with torch.no_grad():
        width = head.eval()(torch.zeros(1, in_dim)).shape[1]
    head.train(was)
    return int(width)
