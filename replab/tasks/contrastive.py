"""Learn a latent from two augmented views of each image (study A3, SimCLR).

Views are made on the device, a whole batch at a time, by the recipe's ``augment`` list;
both views go through encoder and projection in one forward pass, so batch-norm layers
see the same statistics for both.

An objective with ``uses_predictor`` (SimSiam) gets a predictor after the projection
(``model.predictor``) and is called with both views' predictions and projections
``(p1, p2, z1, z2)``; there is no momentum copy. With ``multi_crop`` in the augment list the
loss is the mean of the objective over the pair of global crops and each local crop paired
with each global one (every view through the network in one pass).
"""

from __future__ import annotations

import torch
from torch import nn

from replab.augment import Augment
from replab.errors import ConfigError
from replab.models import MODELS, Predicted, Projected
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_encoder
from replab.tasks.registry import TASKS


@TASKS.register("contrastive")
class Contrastive(Task):
    needs_labels = False
    objective_target = "views"
    # NT-Xent's negatives and Barlow Twins' and VICReg's statistics are the batch's: scored in
    # the 4096-image evaluation batches, a validation loss was not the training loss's measure
    # and cost 16x a 256-image step per image (8192 x 8192 similarities)
    in_batch = True

    def __init__(self, model: Projected | Predicted, objective, augment: Augment) -> None:
        super().__init__(model, objective)
        self.augment = augment
        self.predicts = bool(getattr(objective, "uses_predictor", False))

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> Contrastive:
        if model.projection is None:
            raise ConfigError(
                "task 'contrastive' needs model.projection",
                "add e.g. `projection: {name: "
                "projection_head, hidden: [512], out_dim: 128}` under model",
            )
        loss = cls.build_objective(objective)
        _check_predictor(model, loss)
        if not augment:
            raise ConfigError(
                "task 'contrastive' needs an augment list: two views of one image must differ",
                "add e.g. `augment: [{name: "
                "random_resized_crop, scale: [0.2, 1.0]}, {name: horizontal_flip}]`",
            )
        encoder = build_encoder(model.encoder, shape)
        projection = MODELS.build(
            model.projection.name,
            model.projection.params,
            where="model.projection",
            in_dim=encoder.latent_dim,
        )
        if model.predictor is not None:
            predictor = MODELS.build(
                model.predictor.name,
                model.predictor.params,
                where="model.predictor",
                in_dim=getattr(projection, "out_dim", encoder.latent_dim),
            )
            return cls(
                Predicted(encoder, projection, predictor), loss, Augment.from_components(augment)
            )
        return cls(Projected(encoder, projection), loss, Augment.from_components(augment))

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        views = self.augment.views(x, self.batch_generator(x.device))
        out = model(torch.cat(views))
        # (predictions, projections) of every view, or the projections alone
        p, z = out if self.predicts else (None, out)
        zs = z.chunk(len(views))
        ps = p.chunk(len(views)) if p is not None else zs
        # multi-process training: negatives from every rank's views, this rank's rows at rank * N
        extra = {}
        if gather is not None:
            extra = {"gather": gather, "offset": torch.distributed.get_rank() * len(x)}

        def pair(a: int, b: int) -> torch.Tensor:
            if self.predicts:
                return self.objective(ps[a], ps[b], zs[a], zs[b], **extra)
            return self.objective(zs[a], zs[b], **extra)

        loss = pair(0, 1)
        for local in range(2, len(views)):  # multi_crop: each local crop against both globals
            loss = loss + (pair(local, 0) + pair(local, 1)) / 2
        loss = loss / (len(views) - 1)
        return {"loss": loss, "pair_accuracy": pair_accuracy(zs[0].detach(), zs[1].detach())}


def _check_predictor(model: ModelSpec, objective: nn.Module) -> None:
    """A predictor exactly when the objective uses one (SimSiam); the views' network is
    otherwise one and the same for both."""
    wants = bool(getattr(objective, "uses_predictor", False))
    if model.predictor is not None and not wants:
        raise ConfigError(
            "task 'contrastive' has no predictor for this objective: both views go through "
            "the same network",
            "drop model.predictor, use an objective with a predictor (simsiam), or task "
            "momentum_contrastive (BYOL's predictor)",
        )
    if model.predictor is None and wants:
        raise ConfigError(
            "this objective needs model.predictor (an MLP after the projection)",
            "add e.g. `predictor: {name: projection_head, hidden: [64], out_dim: 128, "
            "batchnorm: true}` under model",
        )


def pair_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Share of views whose nearest other view (cosine) is their own partner."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (sim.argmax(1) == partner).float().mean()
