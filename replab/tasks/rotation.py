"""Predict how an image was rotated: a pretext task that needs no labels (study C2).

Each image of a batch is rotated by one of ``angles`` (multiples of 90°, drawn per image
on the device) and the model predicts which. ``angles: [0, 90]`` is report 001's binary
"rotated by 90° or not"; ``[0, 90, 180, 270]`` is the common 4-way form (Gidaris et al.).
The encoder learned this way is what study C3 transfers, block by block.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import Classifier
from replab.models.layers import latent_dim_of
from replab.spec import ModelSpec
from replab.tasks.base import Gather, Task, build_encoder, build_head
from replab.tasks.registry import TASKS


def rotate(x: torch.Tensor, which: torch.Tensor, angles: list[int]) -> torch.Tensor:
    """Rotate image ``i`` of the batch by ``angles[which[i]]`` degrees: one
    rot90 per angle, not per image."""
    out = x.clone()
    for i, angle in enumerate(angles):
        chosen = which == i
        if angle % 360 and chosen.any():
            out[chosen] = torch.rot90(x[chosen], angle // 90, dims=(2, 3))
    return out


@TASKS.register("rotation")
class Rotation(Task):
    needs_labels = False
    objective_target = "label"
    options = ("angles",)

    def __init__(self, model: Classifier, objective, angles: list[int]) -> None:
        super().__init__(model, objective)
        self.angles = angles

    @classmethod
    def from_spec(
        cls,
        model: ModelSpec,
        objective,
        shape: tuple[int, ...],
        num_classes: int,
        augment=(),
        angles=(0, 90, 180, 270),
    ) -> Rotation:
        angles = list(angles) if isinstance(angles, list | tuple) else angles
        if (
            not isinstance(angles, list)
            or len(angles) < 2
            or len(set(angles)) != len(angles)
            or any(not isinstance(a, int) or a % 90 or not 0 <= a < 360 for a in angles)
        ):
            raise ConfigError(
                f"task.angles={angles!r} must be two or more distinct angles from 0, 90, 180, 270",
                "use [0, 90] (rotated by 90° or not) or [0, 90, 180, 270]",
            )
        if shape[1] != shape[2] and any(a in (90, 270) for a in angles):
            raise ConfigError(
                f"rotating {shape[1]}x{shape[2]} images by 90° changes their shape",
                "use angles [0, 180] for images that are not square",
            )
        if model.head is None:
            raise ConfigError(
                "task 'rotation' needs model.head",
                "add e.g. `head: {name: linear_head}` under model",
            )
        encoder = build_encoder(model.encoder, shape)
        head = build_head(model.head, latent_dim_of(encoder), len(angles))
        return cls(Classifier(encoder, head), cls.build_objective(objective), angles)

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        generator = self.batch_generator(x.device)
        which = torch.randint(len(self.angles), (len(x),), generator=generator, device=x.device)
        logits = model(rotate(x, which, self.angles))
        loss = self.objective(logits, which)
        return {"loss": loss, "accuracy": (logits.detach().argmax(1) == which).float().mean()}
