"""The Gaussian encoder and the VAE that uses it (study E5, report 003 section 2.5).

``GaussianEncoder`` wraps any registered encoder and gives q(z|x) = N(mu, diag(exp(logvar))).
How mu and log-variance are made:

* an encoder with a ``latent_dim`` key (mlp, conv, cnn, vgg16_bn) is built with
  ``2 * latent_dim`` outputs and its last layer's output is split in halves, mu then
  log-variance: exactly "two linear heads" on the encoder's last hidden layer, kept in one
  matrix, and the architecture of report 003 (its encoder's last linear layer gives "two
  vectors of dimension d");
* an encoder without one (resnet18) keeps its features and gets two linear heads
  ``mu`` and ``logvar`` of size ``latent_dim`` (the encoder's feature size unless the
  task passes another).

``forward(x)`` returns mu: what probes, the latent analysis, traversals and reconstructions
read, so every existing evaluation treats a VAE's encoder like any other. ``distribution(x)``
returns (mu, logvar) for the ELBO; the ``vae`` task samples z = mu + sigma * eps itself.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.models.layers import latent_dim_of


class GaussianEncoder(nn.Module):
    def __init__(self, base: nn.Module, latent_dim: int, split: bool) -> None:
        super().__init__()
        self.base = base
        self.latent_dim = latent_dim
        self.split = split
        base_dim = latent_dim_of(base)
        if split:
            if base_dim != 2 * latent_dim:
                raise ValueError(
                    "a split Gaussian encoder "
                    f"needs a base with {2 * latent_dim} outputs, got {base_dim}"
                )
        else:
            self.mu = nn.Linear(base_dim, latent_dim)
            self.logvar = nn.Linear(base_dim, latent_dim)
        # What a mirrored conv decoder reads from its encoder.
        for key in ("feature_shape", "spec"):
            if hasattr(base, key):
                setattr(self, key, getattr(base, key))

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (N, latent_dim)."""
        h = self.base(x)
        if self.split:
            mu, logvar = h.chunk(2, dim=1)
            return mu, logvar
        return self.mu(h), self.logvar(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.distribution(x)[0]


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I), drawn from ``generator`` when given."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


class VAE(nn.Module):
    """Gaussian encoder and decoder. ``forward`` decodes the mean (a deterministic
    reconstruction for figures and test metrics); training samples in the task's step."""

    def __init__(self, encoder: GaussianEncoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
