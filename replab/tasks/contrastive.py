"""Learn a latent from two augmented views of each image (study A3, SimCLR).

Views are made on the device, a whole batch at a time, by the recipe's ``augment`` list;
both views go through encoder and projection in one forward pass, so batch-norm layers
see the same statistics for both.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.augment import Augment
from replab.errors import ConfigError
from replab.models import MODELS, Projected
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

    def __init__(self, model: Projected, objective, augment: Augment) -> None:
        super().__init__(model, objective)
        self.augment = augment

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
        if model.predictor is not None:
            raise ConfigError(
                "task 'contrastive' has no predictor: both views go through the same network",
                "drop model.predictor, or use task momentum_contrastive (BYOL's predictor)",
            )
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
        return cls(
            Projected(encoder, projection),
            cls.build_objective(objective),
            Augment.from_components(augment),
        )

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        views = two_views(self.augment, x, self.batch_generator(x.device))
        z1, z2 = model(views).chunk(2)
        if gather is None:
            loss = self.objective(z1, z2)
        else:
            # multi-process training: negatives from every rank's
            # views, this rank's rows at rank * N
            loss = self.objective(
                z1, z2, gather=gather, offset=torch.distributed.get_rank() * len(z1)
            )
        return {"loss": loss, "pair_accuracy": pair_accuracy(z1.detach(), z2.detach())}


def two_views(augment: Augment, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Two augmented views of every image, stacked (2N, ...): one forward pass sees both, so
    batch-norm statistics are shared."""
    return torch.cat([augment(x, generator), augment(x, generator)])


def pair_accuracy(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Share of views whose nearest other view (cosine) is their own partner."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (sim.argmax(1) == partner).float().mean()
