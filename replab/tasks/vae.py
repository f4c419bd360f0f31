"""A variational autoencoder (study E5, report 003 section 2.5).

The encoder of ``model.encoder`` becomes a Gaussian encoder (see ``replab.models.gaussian``)
with ``latent_dim`` = the encoder's ``latent_dim``; the decoder is built as in
``autoencode`` (``conv_decoder`` mirrors a conv encoder). Each step draws
z = mu + sigma * eps (eval passes replay one seeded stream, so validation losses are
reproducible) and the ``elbo`` objective scores the decoded z. ``task.encoder(x)`` is mu,
so probes and the latent analysis read the posterior mean; the analysis decodes its random
samples from the prior N(0, I) (``has_prior``) rather than a Gaussian fitted to the latents.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models import MODELS
from replab.models.gaussian import VAE, GaussianEncoder, reparameterise
from replab.models.layers import latent_dim_of
from replab.spec import Component, ModelSpec
from replab.tasks.base import Gather, Task, build_decoder, build_encoder
from replab.tasks.registry import TASKS


def build_gaussian_encoder(component: Component, shape: tuple[int, ...]) -> GaussianEncoder:
    accepted = MODELS.signature(component.name)
    if "latent_dim" in accepted:
        d = component.params.get("latent_dim", accepted["latent_dim"].default)
        if not isinstance(d, int) or d < 1:
            raise ConfigError(
                f"task 'vae' needs model.encoder.latent_dim as a positive integer (got {d!r})",
                "set model.encoder.latent_dim, e.g. 44",
            )
        base = build_encoder(
            Component(name=component.name, **{**component.params, "latent_dim": 2 * d}), shape
        )
        return GaussianEncoder(base, d, split=True)
    base = build_encoder(component, shape)
    return GaussianEncoder(base, latent_dim_of(base), split=False)


@TASKS.register("vae")
class VariationalAutoencode(Task):
    needs_labels = False
    objective_target = "posterior"
    reconstructs = True
    has_prior = True

    @classmethod
    def from_spec(
        cls, model: ModelSpec, objective, shape: tuple[int, ...], num_classes: int, augment=()
    ) -> VariationalAutoencode:
        if model.decoder is None:
            raise ConfigError(
                "task 'vae' needs model.decoder",
                "add e.g. `decoder: {name: conv_decoder}` (mirrors a conv encoder) under model",
            )
        if model.head is not None or model.projection is not None:
            raise ConfigError(
                "task 'vae' takes an encoder and a decoder only",
                "remove model.head / model.projection",
            )
        encoder = build_gaussian_encoder(model.encoder, shape)
        decoder = build_decoder(model.decoder, encoder, shape)
        return cls(VAE(encoder, decoder), cls.build_objective(objective))

    def compute(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, gather: Gather | None
    ) -> dict[str, torch.Tensor]:
        # ``model`` is this task's VAE, possibly compiled (which forwards these attributes)
        encoder, decoder = cast(GaussianEncoder, model.encoder), cast(nn.Module, model.decoder)
        mu, logvar = encoder.distribution(x)
        z = reparameterise(mu, logvar, self.batch_generator(x.device))
        return self.objective(decoder(z), x, mu, logvar)
