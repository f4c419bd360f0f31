"""The ELBO objective (study E5) against the formula written with loops, and its KL term
against a Monte-Carlo estimate."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES
from replab.objectives.elbo import gaussian_kl


def _loss(**params):
    return OBJECTIVES.build("elbo", params, where="test").train()


def _reference(x_hat, x, mu, logvar, reconstruction="mse", kl_weight=1.0, reduction="sum"):
    """Image by image, pixel by pixel, latent dimension by latent dimension."""
    n, pixels = x.shape[0], x[0].numel()
    recs, kls = [], []
    for i in range(n):
        rec = 0.0
        for p, q in zip(x_hat[i].reshape(-1), x[i].reshape(-1), strict=True):
            if reconstruction == "mse":
                rec = rec + (p - q) ** 2
            else:
                rec = rec - (q * torch.log(p) + (1 - q) * torch.log(1 - p))
        kl = 0.0
        for m, lv in zip(mu[i], logvar[i], strict=True):
            kl = kl + 0.5 * (m**2 + torch.exp(lv) - 1 - lv)
        if reduction == "mean":
            rec, kl = rec / pixels, kl / pixels
        recs.append(rec)
        kls.append(kl)
    rec, kl = sum(recs) / n, sum(kls) / n
    return rec + kl_weight * kl, rec, kl


@pytest.mark.parametrize("reconstruction", ["mse", "bce"])
@pytest.mark.parametrize("kl_weight", [0.0, 1.0, 4.0])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_matches_the_formula_values_and_gradients(reconstruction, kl_weight, reduction):
    torch.manual_seed(3)
    x = torch.rand(4, 1, 3, 3, dtype=torch.float64)
    x_hat = torch.rand(4, 1, 3, 3, dtype=torch.float64).clamp(0.05, 0.95).requires_grad_(True)
    mu = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    got = _loss(reconstruction=reconstruction, kl_weight=kl_weight, reduction=reduction)(
        x_hat, x, mu, logvar
    )
    want = _reference(x_hat, x, mu, logvar, reconstruction, kl_weight, reduction)
    for key, w in zip(("loss", "reconstruction", "kl"), want, strict=True):
        torch.testing.assert_close(got[key].double(), w.double())
    inputs = (x_hat, mu, logvar)
    for g, w in zip(
        torch.autograd.grad(got["loss"], inputs), torch.autograd.grad(want[0], inputs), strict=True
    ):
        torch.testing.assert_close(g.double(), w.double())


def test_the_defaults_in_training_mode_are_the_per_image_gaussian_elbo():
    """Built from ``{}``: summed squared error plus the unweighted KL, per image."""
    torch.manual_seed(4)
    x = torch.rand(3, 1, 2, 2, dtype=torch.float64)
    x_hat = torch.rand(3, 1, 2, 2, dtype=torch.float64).clamp(0.05, 0.95)
    mu, logvar = (torch.randn(3, 2, dtype=torch.float64) for _ in range(2))
    got = OBJECTIVES.build("elbo", {}, where="test").train()(x_hat, x, mu, logvar)
    want = _reference(x_hat, x, mu, logvar, "mse", 1.0, "sum")
    for key, w in zip(("loss", "reconstruction", "kl"), want, strict=True):
        torch.testing.assert_close(got[key], w)
    for other in (("bce", 1.0, "sum"), ("mse", 0.5, "sum"), ("mse", 1.0, "mean")):
        assert not torch.allclose(got["loss"], _reference(x_hat, x, mu, logvar, *other)[0])


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max().item() == 0.0
    assert (gaussian_kl(torch.randn(50, 4), torch.randn(50, 4)) > 0).all()


def test_closed_form_kl_agrees_with_monte_carlo():
    """E_q[log q(z) - log p(z)] estimated from 400,000 draws of z ~ q."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.3, -1.2, 0.8]], dtype=torch.float64)
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    log_q = (-0.5 * ((z - mu) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)).sum(1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(1)
    mc = (log_q - log_p).mean().item()
    closed = gaussian_kl(mu, logvar).item()
    assert closed == pytest.approx(mc, abs=0.02)  # the estimate's standard error is about 0.004


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"reconstruction": "l1"}, "not known"),
        ({"reduction": "none"}, "not known"),
        ({"kl_weight": -1.0}, "kl_weight must be >= 0"),
    ],
)
def test_bad_settings_are_clear_errors(params, message):
    with pytest.raises(ConfigError, match=message):
        _loss(**params)
