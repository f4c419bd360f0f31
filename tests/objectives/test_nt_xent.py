"""NT-Xent (SimCLR) against the paper's formula written with loops, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(temperature: float = 0.5):
    return OBJECTIVES.build("nt_xent", {"temperature": temperature}, where="test").train()


def _paper(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR eq. 1 with explicit loops: anchor i's positive is its other view."""
    z = torch.cat([z1, z2])
    n2 = z.shape[0]

    def sim(i, k):
        return torch.dot(z[i], z[k]) / (z[i].norm() * z[k].norm())

    terms = []
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denominator = sum(torch.exp(sim(i, k) / tau) for k in range(n2) if k != i)
        terms.append(-torch.log(torch.exp(sim(i, j) / tau) / denominator))
    return torch.stack(terms).mean()


def _sums(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """Vectorised, but through positive and negative sums rather than a cross-entropy."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).double(), dim=1)
    e = torch.exp(z @ z.T / tau)
    positive = torch.cat([(z[: len(z1)] * z[len(z1) :]).sum(1)] * 2) / tau
    negatives = e.sum(1) - e.diagonal() - positive.exp()
    return (torch.log(positive.exp() + negatives) - positive).mean()


@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_matches_the_paper_values_and_gradients(tau, n):
    torch.manual_seed(n)
    z1 = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    got, want = _loss(tau)(z1, z2), _paper(z1, z2, tau)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (z1, z2)), torch.autograd.grad(want, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("n", [1, 6])
def test_the_default_temperature_is_simclrs_half_in_training_mode(n):
    """Built from ``{}``: the loss at T = 0.5, not at the 0.1 of SimCLR's ImageNet runs."""
    torch.manual_seed(10 + n)
    z1, z2 = (torch.randn(n, 5, dtype=torch.float64) for _ in range(2))
    loss = OBJECTIVES.build("nt_xent", {}, where="test").train()
    got = loss(z1, z2)
    torch.testing.assert_close(got, _paper(z1, z2, 0.5))
    if n > 1:
        assert not torch.allclose(got, _paper(z1, z2, 0.1))


def test_large_batch_float32_against_a_float64_reference():
    torch.manual_seed(0)
    z1 = torch.randn(2048, 128, requires_grad=True)
    z2 = (z1.detach() + 0.5 * torch.randn(2048, 128)).requires_grad_(True)
    got = _loss(0.5)(z1, z2)
    want = _sums(z1, z2, 0.5)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    g64 = torch.autograd.grad(want, (z1, z2))
    for g, w in zip(torch.autograd.grad(got, (z1, z2)), g64, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-8)


def test_invariant_to_scaling_rows():
    torch.manual_seed(1)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    scale = torch.rand(16, 1) * 10 + 0.1
    torch.testing.assert_close(_loss()(z1 * scale, z2 * 3.0), _loss()(z1, z2))


def test_aligned_orthogonal_views_give_near_zero_loss():
    z = torch.eye(8, 16)
    assert _loss(0.05)(z, z.clone()).item() < 1e-6
    # and at temperature 1 it is exactly log(1 + (2N - 2) / e)
    assert _loss(1.0)(z, z.clone()).item() == pytest.approx(math.log(1 + 14 / math.e), rel=1e-6)


def test_identity_gather_changes_nothing():
    torch.manual_seed(2)
    z1, z2 = torch.randn(10, 6), torch.randn(10, 6)
    torch.testing.assert_close(_loss()(z1, z2, gather=lambda t: t, offset=0), _loss()(z1, z2))


def _sharded(loss, z1, z2, split):
    """Per-rank losses of a batch split at ``split``, each rank gathering both shards."""
    shards = [(z1[:split], z2[:split]), (z1[split:], z2[split:])]
    losses = []
    for rank, (a, b) in enumerate(shards):

        def gather(local, rank=rank, a=a):
            view = 0 if local is a else 1
            parts = [shard[view] for shard in shards]
            parts[rank] = local  # like torch.distributed.nn.all_gather: own rows keep their graph
            return torch.cat(parts)

        losses.append(loss(a, b, gather=gather, offset=0 if rank == 0 else split))
    return losses


def test_two_shards_average_to_the_full_batch():
    torch.manual_seed(3)
    z1 = torch.randn(12, 6, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(12, 6, dtype=torch.float64, requires_grad=True)
    loss = _loss(0.3)
    full = loss(z1, z2)
    average = sum(_sharded(loss, z1, z2, 6)) / 2
    torch.testing.assert_close(average, full)
    for g, w in zip(
        torch.autograd.grad(average, (z1, z2)), torch.autograd.grad(full, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(g, w)
    first, second = _sharded(loss, z1, z2, 5)  # unequal shards: weight by rows
    torch.testing.assert_close((5 * first + 7 * second) / 12, full)


def test_gather_with_a_bad_offset_is_refused():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="offset"):
        _loss()(z, z, gather=lambda t: t, offset=1)


@pytest.mark.parametrize("tau", [0.0, -0.1, float("nan")])
def test_non_positive_temperature_is_a_config_error(tau):
    with pytest.raises(ConfigError, match="temperature"):
        _loss(tau)


def test_compares_views():
    assert OBJECTIVES.get("nt_xent").target == "views"
