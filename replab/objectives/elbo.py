"""The negative evidence lower bound of a Gaussian-latent VAE (Kingma and Welling,
"Auto-Encoding Variational Bayes", ICLR 2014, arXiv:1312.6114; the ``kl_weight`` is beta of
Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework", ICLR 2017)::

    rec_i = sum_p (x_hat_ip - x_ip)^2                                    (reconstruction mse)
          = sum_p -(x_ip log c_ip + (1 - x_ip) log(1 - c_ip)),
            c = clamp(x_hat, 1e-7, 1 - 1e-7)                             (reconstruction bce)
    kl_i  = 0.5 sum_j (mu_ij^2 + exp(logvar_ij) - 1 - logvar_ij)         (appendix B)
    reduction "mean": rec_i and kl_i both divided by P, the pixels per image
    L = mean_i rec_i + kl_weight * mean_i kl_i

Defaults: ``reconstruction = "mse"``, ``kl_weight = 1`` (the plain VAE), ``reduction =
"sum"`` (the per-image ELBO). ``forward`` returns ``{"loss": L, "reconstruction": mean_i
rec_i, "kl": mean_i kl_i}``.
"""

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.objectives.precision import full_precision
from replab.objectives.registry import OBJECTIVES


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in closed form:
    ``0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)`` (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


@OBJECTIVES.register("elbo")
class ELBOLoss(nn.Module):
    """The negative evidence lower bound of a VAE (study E5), per image, averaged over the batch::

        loss = reconstruction(x_hat, x) + kl_weight * KL(q(z|x) || N(0, I))

    ``reconstruction``: ``mse`` is the squared error summed over the image's pixels (a
    Gaussian decoder of fixed variance, up to constants; report 003's VAE adds its KL term
    to the AE's MSE loss), ``bce`` the binary cross-entropy summed over pixels (a Bernoulli
    decoder; needs sigmoid outputs and targets in [0, 1], i.e. ``data.normalize: unit``).
    The KL term is the closed form, summed over latent dimensions.

    ``reduction``: ``sum`` (default) is the standard per-image ELBO above; ``mean`` divides
    BOTH terms by the number of pixels (the same optimum and the same ``kl_weight``
    meaning, a loss on the scale of a per-pixel MSE). ``kl_weight`` is beta of a beta-VAE
    (1 is the plain VAE).

    ``target = "posterior"``: the task passes the reconstruction, the input and the
    posterior's mean and log-variance; ``forward`` returns ``{"loss", "reconstruction",
    "kl"}`` (each a batch mean of per-image figures; ``kl`` without the weight).
    """

    target = "posterior"

    def __init__(
        self, reconstruction: str = "mse", kl_weight: float = 1.0, reduction: str = "sum"
    ) -> None:
        super().__init__()
        if reconstruction not in ("mse", "bce"):
            raise ConfigError(
                f"elbo reconstruction {reconstruction!r} is not known", "use mse or bce"
            )
        if reduction not in ("sum", "mean"):
            raise ConfigError(
                f"elbo reduction {reduction!r} is not known",
                "use sum (per image) or mean (per pixel)",
            )
        if not kl_weight >= 0:
            raise ConfigError(
                f"elbo kl_weight must be >= 0 (got {kl_weight})",
                "use 1.0 for a plain VAE, another value for a beta-VAE",
            )
        self.reconstruction, self.kl_weight, self.reduction = reconstruction, kl_weight, reduction

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        prediction, target = (
            full_precision(prediction).flatten(1),
            full_precision(target).flatten(1),
        )
        if self.reconstruction == "mse":
            per_pixel = (prediction - target).pow(2)
        else:
            per_pixel = F.binary_cross_entropy(
                prediction.clamp(1e-7, 1 - 1e-7), target, reduction="none"
            )
        recon = per_pixel.sum(1)
        kl = gaussian_kl(full_precision(mu), full_precision(logvar))
        if self.reduction == "mean":
            recon, kl = recon / prediction.shape[1], kl / prediction.shape[1]
        recon, kl = recon.mean(), kl.mean()
        return {"loss": recon + self.kl_weight * kl, "reconstruction": recon, "kl": kl}
