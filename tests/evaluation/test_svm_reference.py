"""LinearSVC at the C equivalent to SGD's objective is that objective's optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.evaluation.svm_reference import equivalent_C, fit_linear_svc, sgd_objective


def blobs(n: int, gap: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 2)) + gap * (2 * y[:, None] - 1)
    return x, y


def test_separable_problem_is_solved_and_converges():
    train, test = blobs(60, 4.0, 0), blobs(40, 4.0, 1)
    fit = fit_linear_svc("toy", 1.0, train, {"test": test})
    assert fit.accuracy == {"train": 1.0, "test": 1.0}
    assert fit.converged and fit.warning is None and fit.iterations < fit.max_iter


def test_equivalent_C_gives_the_optimum_of_sgds_objective():
    x, y = blobs(40, 0.7, 2)  # overlapping: the hinge and the L2 term both matter
    C, wd = 1.0, 0.1
    fit = fit_linear_svc("toy", equivalent_C(C, wd, len(y)), (x, y), {}, sgd=(C, wd))
    # full-batch subgradient descent on C * mean(hinge) + (wd/2) ||theta||^2,
    # the SGD runs' objective
    xt, st = torch.tensor(x), torch.tensor(2.0 * y - 1)
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    best = float("inf")
    for step in range(1, 6001):
        loss = C * (1 - st * (xt @ theta[:2] + theta[2])).clamp_min(0).mean() + 0.5 * wd * (
            theta @ theta
        )
        best = min(best, loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta -= grad / (wd * step)  # the classic 1/(lambda t) step of Pegasos
    # theta = 0: every hinge is 1
    assert sgd_objective(np.zeros(2), 0.0, x, y, C, wd) == pytest.approx(C)
    # nothing descent finds may beat the optimum, and descent gets close to it
    assert best >= fit.objective - 1e-6
    assert best == pytest.approx(fit.objective, rel=0.01)
    with pytest.raises(ValueError):
        equivalent_C(C, 0.0, 10)


def test_a_wrong_C_is_not_the_optimum():
    # the check above must be able to fail: LinearSVC at 100x the
    # equivalent C solves another problem
    x, y = blobs(40, 0.7, 2)
    right = fit_linear_svc("right", equivalent_C(1.0, 0.1, 40), (x, y), {}, sgd=(1.0, 0.1))
    wrong = fit_linear_svc("wrong", 100 * equivalent_C(1.0, 0.1, 40), (x, y), {}, sgd=(1.0, 0.1))
    assert wrong.objective > right.objective * 1.01


def test_non_convergence_is_recorded_not_hidden():
    x, y = blobs(200, 0.1, 3)
    fit = fit_linear_svc("capped", 100.0, (x, y), {}, max_iter=2)
    assert not fit.converged and fit.warning and "converge" in fit.warning
