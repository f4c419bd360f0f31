"""The masked autoencoder (MAE, He et al. 2022): hide most patches, predict their pixels.

``task: {name: mae, mask_ratio: 0.75, patch_size: 4}`` with ``objective: {name: mae}`` and,
optionally, ``model.decoder: {name: mae_decoder, width: 128, depth: 2, heads: 4}`` (its
defaults when left out). With a ``vit`` encoder the encoder sees the visible patches only and
the patches are the ViT's own (``patch_size`` must then be left out or equal the encoder's);
with any other encoder the hidden patches are zeroed in the input (SimMIM-style, see
``replab.models.mae``). Each training step draws a fresh mask per image; evaluation passes
replay one seeded stream, so the validation loss changes only with the model.

The run's report shows test reconstructions as for ``autoencode``: the visible patches with
the predicted hidden ones (the test metrics compare those images with the originals, so they
count the visible patches as exact); the model's ``masked_input(x)`` is the masked image of
the same draw. Probes and the analysis read ``model.encoder`` on the whole, unmasked image.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import MODELS
from replab.models.layers import latent_dim_of
from replab.models.mae import MaskedAutoencoder, is_token_encoder
from replab.models.vit import check_patches, patchify
from replab.spec import Component, ModelSpec
from replab.tasks.base import Gather, Task, build_encoder
from replab.tasks.registry import TASKS


@TASKS.register("mae")
class MaskedAutoencode(Task):
    needs_labels = False
    objective_target = "masked"
    reconstructs = True
    options = ("mask_ratio", "patch_size")
    model: MaskedAutoencoder

    @classmethod
    def from_spec(
        cls,
        model: ModelSpec,
        objective,
        shape: tuple[int, ...],
        num_classes: int,
        augment=(),
        mask_ratio: float = 0.75,
        patch_size: int | None = None,
    ) -> MaskedAutoencode:
        if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, int | float):
            mask_ratio = -1.0  # refused just below, with the value's own message
        if not 0 < mask_ratio < 1:
            raise ConfigError(
                f"task.mask_ratio={mask_ratio!r} is not a share in (0, 1)",
                "e.g. task={name: mae, mask_ratio: 0.75} (MAE's default)",
            )
        if model.head is not None or model.projection is not None or model.predictor:
            raise ConfigError(
                "task 'mae' takes an encoder and a decoder only",
                "remove model.head / model.projection / model.predictor",
            )
        encoder = build_encoder(model.encoder, shape)
        p = _patch_size(encoder, patch_size)
        num_patches = check_patches(tuple(shape), p, "task mae")
        in_dim = encoder.width if is_token_encoder(encoder) else latent_dim_of(encoder)
        spec = model.decoder or Component(name="mae_decoder")
        decoder = MODELS.build(
            spec.name,
            spec.params,
            where="model.decoder",
            in_dim=in_dim,
            num_patches=num_patches,
            patch_dim=p * p * shape[0],
        )
        loss = cls.build_objective(objective)
        mae = MaskedAutoencoder(encoder, decoder, shape, p, float(mask_ratio), bool(loss.norm_pix))
        return cls(mae, loss)

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        generator = self.batch_generator(x.device)
        noise = torch.rand(len(x), self.model.num_patches, generator=generator, device=x.device)
        prediction, mask = model(x, noise)
        loss = self.objective(prediction, patchify(x, self.model.patch_size), mask)
        return {"loss": loss, "mask_share": mask.float().mean()}


def _patch_size(encoder: nn.Module, given: int | None) -> int:
    """A ViT's own patch size (a different one is refused); 4 for other encoders."""
    own = getattr(encoder, "patch_size", None) if is_token_encoder(encoder) else None
    if given is not None and (isinstance(given, bool) or not isinstance(given, int)):
        raise ConfigError(f"task.patch_size={given!r} is not an integer", "e.g. patch_size: 4")
    if own is not None and given is not None and given != own:
        raise ConfigError(
            f"task.patch_size={given} differs from the ViT encoder's patch_size={own}",
            "leave task.patch_size out: MAE masks the encoder's own patches",
        )
    return int(own if own is not None else given if given is not None else 4)
