"""Pair margin contrastive loss (report 001 problem 6) against its formula written with loops."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES
from replab.objectives.pair_margin import permuted_pairs


def _loss(margin: float = 2.0):
    return OBJECTIVES.build("pair_margin", {"margin": margin}, where="test").train()


def _report(
    z_a: torch.Tensor, z_b: torch.Tensor, same: torch.Tensor, margin: float
) -> torch.Tensor:
    """Report 001 problem 6, pair by pair and coordinate by coordinate:
    S * ||a - b||^2 + (1 - S) * max(M - ||a - b||^2, 0), then the mean over pairs."""
    terms = []
    for i in range(z_a.shape[0]):
        d2 = sum((z_a[i, k] - z_b[i, k]) ** 2 for k in range(z_a.shape[1]))
        if bool(same[i]):
            terms.append(d2)
        else:
            terms.append(torch.clamp(margin - d2, min=0.0))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("margin", [0.5, 2.0, 7.0])
@pytest.mark.parametrize("n,d", [(1, 2), (9, 2), (16, 5)])
def test_matches_the_report_values_and_gradients(margin, n, d):
    torch.manual_seed(n * 10 + d)
    z_a = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(n, d, dtype=torch.float64, requires_grad=True)
    same = torch.arange(n) % 3 == 0  # mixed same / different pairs
    got, want = _loss(margin)(z_a, z_b, same), _report(z_a, z_b, same, margin)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (z_a, z_b)), torch.autograd.grad(want, (z_a, z_b)), strict=True
    ):
        torch.testing.assert_close(g, w)


def test_the_default_margin_in_training_mode_is_the_reports_two():
    torch.manual_seed(6)
    z_a, z_b = (torch.randn(12, 2, dtype=torch.float64) for _ in range(2))
    same = torch.arange(12) % 3 == 0
    got = OBJECTIVES.build("pair_margin", {}, where="test").train()(z_a, z_b, same)
    torch.testing.assert_close(got, _report(z_a, z_b, same, 2.0))
    assert not torch.allclose(got, _report(z_a, z_b, same, 1.0))


def test_mixed_pairs_hit_both_sides_of_the_hinge():
    """Different-class pairs inside and outside the margin, checked against the loops."""
    torch.manual_seed(4)
    z_a = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
    z_b = (
        z_a.detach() + torch.randn(40, 2, dtype=torch.float64) * torch.linspace(0.1, 3, 40)[:, None]
    ).requires_grad_(True)
    same = torch.rand(40) < 0.5
    d2 = (z_a - z_b).detach().pow(2).sum(1)
    assert ((d2 < 2) & ~same).any() and ((d2 > 2) & ~same).any() and same.any()
    # 0/1 floats work too
    got, want = _loss(2.0)(z_a, z_b, same.float()), _report(z_a, z_b, same, 2.0)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (z_a, z_b)), torch.autograd.grad(want, (z_a, z_b)), strict=True
    ):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("same", [True, False])
def test_identical_embeddings_give_finite_gradients(same):
    z = torch.randn(3, 2, requires_grad=True)
    loss = _loss(2.0)(z, z.detach().clone().requires_grad_(True), torch.tensor([same] * 3))
    assert loss.item() == pytest.approx(0.0 if same else 2.0)
    grad = torch.autograd.grad(loss, z)[0]
    assert torch.isfinite(grad).all() and (grad == 0).all()  # d^2 has zero slope at d = 0
    # and a batch paired with itself (a permutation's fixed points) too
    w = torch.randn(5, 2, requires_grad=True)
    loss = _loss()(w, w, torch.tensor([True, False, True, False, False]))
    assert torch.isfinite(torch.autograd.grad(loss, w)[0]).all()


def test_a_different_class_pair_farther_than_the_margin_costs_nothing():
    z_a = torch.zeros(2, 2, requires_grad=True)
    z_b = torch.tensor([[2.5, 0.0], [0.0, -3.0]])  # d > M = 2
    loss = _loss(2.0)(z_a, z_b, torch.tensor([False, False]))
    assert loss.item() == 0.0
    assert (torch.autograd.grad(loss, z_a)[0] == 0).all()
    # the report hinges the SQUARED distance: free once d^2 >= M, i.e. d >= sqrt(2) here ...
    assert (
        _loss(2.0)(torch.zeros(1, 2), torch.tensor([[1.5, 0.0]]), torch.tensor([False])).item()
        == 0.0
    )
    # ... and just inside it costs M - d^2
    assert _loss(2.0)(
        torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([False])
    ).item() == pytest.approx(1.0)
    # a same-class pair costs its squared distance
    assert _loss(2.0)(
        torch.zeros(1, 2), torch.tensor([[3.0, 4.0]]), torch.tensor([True])
    ).item() == pytest.approx(25.0)


def test_permuted_pairs_pairs_each_row_with_a_permuted_row():
    n = 50
    z = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)  # row i is (i, i)
    labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    z_a, z_b, same = permuted_pairs(z, labels, generator=torch.Generator().manual_seed(1))
    perm = z_b[:, 0].long()
    assert torch.equal(z_a, z) and torch.equal(z_b, z[perm])
    assert sorted(perm.tolist()) == list(range(n)) and not torch.equal(perm, torch.arange(n))
    assert same.dtype == torch.bool and torch.equal(same, labels == labels[perm])


def test_permuted_pairs_is_reproducible_with_a_seeded_generator():
    z, labels = torch.randn(32, 2), torch.randint(0, 3, (32,))
    first = permuted_pairs(z, labels, generator=torch.Generator().manual_seed(7))
    again = permuted_pairs(z, labels, generator=torch.Generator().manual_seed(7))
    other = permuted_pairs(z, labels, generator=torch.Generator().manual_seed(8))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[1], other[1])


def test_permuted_pairs_feed_the_loss_and_carry_gradients():
    torch.manual_seed(5)
    z = torch.randn(20, 2, requires_grad=True)
    labels = torch.randint(0, 4, (20,))
    loss = _loss()(*permuted_pairs(z, labels, generator=torch.Generator().manual_seed(2)))
    grad = torch.autograd.grad(loss, z)[0]
    assert torch.isfinite(loss) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_shape_mismatches_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        _loss()(torch.zeros(3, 2), torch.zeros(4, 2), torch.ones(3))
    with pytest.raises(ValueError, match="same-class flag"):
        _loss()(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(4))
    with pytest.raises(ValueError, match="labels"):
        permuted_pairs(torch.zeros(3, 2), torch.zeros(4))


@pytest.mark.parametrize("margin", [0.0, -1.0, float("nan"), math.inf])
def test_non_positive_margin_is_a_config_error(margin):
    with pytest.raises(ConfigError, match="margin") as err:
        _loss(margin)
    assert "Fix:" in str(err.value)


def test_default_margin_and_target():
    assert OBJECTIVES.build("pair_margin", {}, where="test").margin == 2.0  # report 001: M = 2
    assert OBJECTIVES.get("pair_margin").target == "pairs"
