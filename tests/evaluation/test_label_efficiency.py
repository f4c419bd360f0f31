"""The label-efficiency curve: seeded stratified draws, a logistic probe checked against
scikit-learn's ``LogisticRegression`` on the same draws (default and non-default C), the kNN
with min(knn_k, k) neighbours checked against a naive vote, and the area over log-shots."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from replab.evaluation.label_efficiency import (
    Curve,
    area,
    label_curves,
    logistic_accuracy,
    logistic_fit,
    paired_lead,
    shot_indices,
)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    return x[:1200], y[:1200], x[1200:], y[1200:]


def test_draws_are_stratified_seeded_and_nested(digits):
    _, y, _, _ = digits
    index = shot_indices(y, [1, 2, 5], draws=3, seed=7)
    for k, draws in index.items():
        assert len(draws) == 3
        for rows in draws:
            assert torch.bincount(y[rows], minlength=10).tolist() == [k] * 10
    for d in range(3):  # within one draw, the k = 1 rows are among the k = 2 and k = 5 rows
        assert set(index[1][d].tolist()) <= set(index[2][d].tolist()) <= set(index[5][d].tolist())
    again = shot_indices(y, [1, 2, 5], draws=3, seed=7)
    assert all(torch.equal(a, b) for k in index for a, b in zip(index[k], again[k], strict=True))
    other = shot_indices(y, [1, 2, 5], draws=3, seed=8)
    assert not torch.equal(index[5][0], other[5][0])
    assert not torch.equal(index[5][0], index[5][1])  # draws differ from each other


def test_a_small_class_gives_all_it_has():
    y = torch.tensor([0] * 10 + [1] * 3)
    rows = shot_indices(y, [5], draws=1, seed=0)[5][0]
    assert torch.bincount(y[rows]).tolist() == [5, 3]
    curves = label_curves(
        torch.randn(13, 4), y, torch.randn(6, 4), torch.tensor([0, 1] * 3), [1, 5], 2, 0
    )
    assert any("5 labels per class" in note for note in curves.notes)


@pytest.mark.parametrize("c", [1.0, 0.05])
def test_logistic_probe_matches_scikit_learn_on_the_same_draws(digits, c):
    x, y, xt, yt = digits
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs, xts = (x - mean) / std, (xt - mean) / std
    for k, draws in shot_indices(y, [1, 5, 25], draws=2, seed=0).items():
        for rows in draws:
            ours_w, ours_b = logistic_fit(xs[rows], y[rows], 10, c)
            theirs = LogisticRegression(C=c, max_iter=10_000, tol=1e-10).fit(
                xs[rows].double().numpy(), y[rows].numpy()
            )
            # same objective, same optimum: the coefficients agree to the solvers' tolerances
            np.testing.assert_allclose(ours_w.T.numpy(), theirs.coef_, atol=5e-3)
            # softmax ignores a shift shared by every class's intercept
            np.testing.assert_allclose(
                ours_b.numpy() - ours_b.numpy().mean(),
                theirs.intercept_ - theirs.intercept_.mean(),
                atol=5e-3,
            )
            accuracy = logistic_accuracy(xs[rows], y[rows], xts, yt, 10, c)
            expected = theirs.score(xts.double().numpy(), yt.numpy())
            assert accuracy == pytest.approx(expected, abs=2e-3), k


def naive_knn(train, train_y, test, test_y, k) -> float:
    """Cosine kNN as loops: the k most similar rows vote; a tie goes to the nearest tied class."""
    correct = 0
    for q, truth in zip(test, test_y, strict=True):
        sims = [float(torch.cosine_similarity(q, t, dim=0)) for t in train]
        order = sorted(range(len(train)), key=lambda i: -sims[i])[:k]
        votes: dict[int, int] = {}
        for i in order:
            votes[int(train_y[i])] = votes.get(int(train_y[i]), 0) + 1
        best = max(votes.values())
        winner = next(int(train_y[i]) for i in order if votes[int(train_y[i])] == best)
        correct += winner == int(truth)
    return correct / len(test)


def test_knn_curve_votes_with_at_most_k_neighbours(digits):
    x, y, xt, yt = digits
    xt, yt = xt[:150], yt[:150]
    curves = label_curves(x, y, xt, yt, [1, 3, 30], draws=2, seed=3, knn_k=5)
    index = shot_indices(y, [1, 3, 30], 2, 3)
    for k, neighbours in ((1, 1), (3, 3), (30, 5)):  # min(knn_k, k)
        for d, rows in enumerate(index[k]):
            expected = naive_knn(x[rows], y[rows], xt, yt, neighbours)
            assert curves.knn.draws[k][d] == pytest.approx(expected)


def test_curve_rises_with_labels_and_summarises_by_area(digits):
    x, y, xt, yt = digits
    curves = label_curves(x, y, xt, yt, [1, 10, 100], draws=3, seed=0)
    lin = curves.linear
    assert lin.mean(100) > lin.mean(1) + 3 * (lin.std(1) + lin.std(100))
    assert min(lin.mean(k) for k in lin.shots) <= lin.auc() <= max(lin.mean(k) for k in lin.shots)


def test_area_is_the_mean_over_a_log_axis():
    # two segments of equal log length: the trapezoids' mean
    assert area([1, 10, 100], [0.2, 0.4, 1.0]) == pytest.approx((0.3 + 0.7) / 2)
    # unequal log lengths weigh by their length
    x = np.log([1, 2, 100])
    expected = (0.45 * (x[1] - x[0]) + 0.75 * (x[2] - x[1])) / (x[2] - x[0])
    assert area([1, 2, 100], [0.4, 0.5, 1.0]) == pytest.approx(expected)
    assert area([5], [0.7]) == 0.7
    curve = Curve({1: [0.1, 0.3], 10: [0.5, 0.7]})
    assert curve.mean(1) == pytest.approx(0.2) and curve.std(10) == pytest.approx(0.1)
    assert curve.auc() == pytest.approx(0.4)


def test_paired_lead_counts_pairs():
    mean, std, wins, n = paired_lead([0.5, 0.6, 0.7], [0.4, 0.65, 0.5])
    assert (wins, n) == (2, 3)
    assert mean == pytest.approx(np.mean([0.1, -0.05, 0.2]))
    assert std == pytest.approx(np.std([0.1, -0.05, 0.2]))
    assert math.isnan(paired_lead([], [])[0])
