"""Triplet margin loss and in-batch mining (report 004, study F2) against loop references."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES
from replab.objectives.triplet import mine_triplets


def _loss(margin: float = 1.0, squared: bool = False):
    return OBJECTIVES.build("triplet", {"margin": margin, "squared": squared}, where="test").train()


def _dist(a, b, squared):
    d2 = sum((a[k] - b[k] + (0.0 if squared else 1e-6)) ** 2 for k in range(len(a)))
    return d2 if squared else torch.sqrt(d2)


def _reference(z, triplets, margin, squared):
    """max(d(a, p) - d(a, n) + margin, 0), triplet by triplet, averaged."""
    terms = [
        torch.clamp(_dist(z[a], z[p], squared) - _dist(z[a], z[n], squared) + margin, min=0.0)
        for a, p, n in triplets
    ]
    return sum(terms) / len(terms)


def _hard_reference(z, labels, margin, squared):
    """Batch-hard (Hermans et al.): per anchor, the farthest positive and the nearest negative."""
    terms = []
    for i in range(len(z)):
        pos = [
            _dist(z[i], z[j], squared) for j in range(len(z)) if j != i and labels[j] == labels[i]
        ]
        neg = [_dist(z[i], z[j], squared) for j in range(len(z)) if labels[j] != labels[i]]
        if pos and neg:
            terms.append(
                torch.clamp(torch.stack(pos).max() - torch.stack(neg).min() + margin, min=0.0)
            )
    return sum(terms) / len(terms)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [0.2, 1.0, 3.0])
def test_random_triplets_match_the_formula_values_and_gradients(margin, squared):
    torch.manual_seed(1)
    z = torch.randn(24, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(24) % 5
    a, p, n = mine_triplets(z, labels, "random", torch.Generator().manual_seed(7))
    got = _loss(margin, squared)(z[a], z[p], z[n])
    want = _reference(
        z, list(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)), margin, squared
    )
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, z)[0], torch.autograd.grad(want, z)[0])


def test_the_defaults_in_training_mode_are_the_euclidean_margin_one():
    torch.manual_seed(3)
    z = 0.5 * torch.randn(24, 4, dtype=torch.float64)
    labels = torch.arange(24) % 5
    a, p, n = mine_triplets(z, labels, generator=torch.Generator().manual_seed(7))
    triplets = list(zip(a.tolist(), p.tolist(), n.tolist(), strict=True))
    got = OBJECTIVES.build("triplet", {}, where="test").train()(z[a], z[p], z[n])
    torch.testing.assert_close(got, _reference(z, triplets, 1.0, False))
    assert not torch.allclose(got, _reference(z, triplets, 0.9, False))
    assert not torch.allclose(got, _reference(z, triplets, 1.0, True))


def test_euclidean_loss_is_pytorchs_triplet_margin_loss():
    """Report 004 used PyTorch's loss: same values and gradients."""
    torch.manual_seed(2)
    a, p, n = (torch.randn(30, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    got = _loss(1.0)(a, p, n)
    want = torch.nn.TripletMarginLoss(margin=1.0)(a, p, n)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (a, p, n)), torch.autograd.grad(want, (a, p, n)), strict=True
    ):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("squared", [False, True])
def test_batch_hard_matches_the_loop_reference_values_and_gradients(squared):
    torch.manual_seed(4)
    z = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    # class 4 has no positive
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 0, 1, 2, 3, 3, 0, 1, 2, 4, 0, 1, 2])
    a, p, n = mine_triplets(z, labels, "batch_hard", squared=squared)
    assert 16 not in a.tolist() and len(a) == 19
    got = _loss(1.0, squared)(z[a], z[p], z[n])
    want = _hard_reference(z, labels, 1.0, squared)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, z)[0], torch.autograd.grad(want, z)[0])


def test_random_mining_draws_valid_reproducible_and_all_candidates():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # class 2's only image has no positive
    z = torch.zeros(10, 2)
    a, p, n = mine_triplets(z, labels, "random", torch.Generator().manual_seed(0))
    assert a.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert (labels[p] == labels[a]).all() and (p != a).all() and (labels[n] != labels[a]).all()
    again = mine_triplets(z, labels, "random", torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip((a, p, n), again, strict=True))
    # over many draws, anchor 0 picks each of its two positives and each of its seven negatives
    gen = torch.Generator().manual_seed(1)
    picks = [mine_triplets(z, labels, "random", gen) for _ in range(300)]
    positives = torch.stack([pk[1][0] for pk in picks])
    negatives = torch.stack([pk[2][0] for pk in picks])
    assert set(positives.tolist()) == {1, 2} and set(negatives.tolist()) == {3, 4, 5, 6, 7, 8, 9}
    assert 0.35 < (positives == 1).float().mean().item() < 0.65  # uniform: 1/2 each


def test_no_usable_anchor_gives_a_zero_loss_with_zero_gradients():
    z = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.zeros(4, dtype=torch.long), torch.arange(4)):  # one class; no class twice
        a, p, n = mine_triplets(z, labels, "batch_hard")
        assert len(a) == 0
        loss = _loss()(z[a], z[p], z[n])
        assert loss.item() == 0.0 and (torch.autograd.grad(loss, z)[0] == 0).all()


def test_coinciding_embeddings_give_finite_gradients():
    z = torch.zeros(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    a, p, n = mine_triplets(z, labels, "batch_hard")
    loss = _loss(1.0)(z[a], z[p], z[n])
    assert (
        loss.item() == pytest.approx(1.0) and torch.isfinite(torch.autograd.grad(loss, z)[0]).all()
    )


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="margin must be"):
        _loss(-1.0)
    with pytest.raises(ConfigError, match="mining 'hardest' is not known"):
        mine_triplets(torch.zeros(2, 2), torch.tensor([0, 1]), "hardest")
