"""BYOL against the paper's loss written with loops: values, gradients (none into the
target), every option at a non-default value, and the degenerate batches."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("byol", params, where="test").train()


def _paper(p1, p2, z1, z2, symmetric=True):
    """One row and one coordinate at a time: ||p/|p| - z/|z| ||^2, z a constant."""
    n, d = p1.shape

    def norm(v, i):
        return math.sqrt(sum(v[i, j].item() ** 2 for j in range(d)))

    def regression(p, z):
        total = 0
        for i in range(n):
            p_norm = torch.sqrt(sum(p[i, j] ** 2 for j in range(d)))
            total = total + sum(
                (p[i, j] / p_norm - z[i, j].item() / norm(z, i)) ** 2 for j in range(d)
            )
        return total / n

    loss = regression(p1, z2)
    return loss + regression(p2, z1) if symmetric else loss


def _four(n, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)
    ]


OPTIONS = [{}, {"symmetric": False}, {"momentum": 0.99, "momentum_schedule": "constant"}]


@pytest.mark.parametrize("params", OPTIONS)
@pytest.mark.parametrize("n", [1, 5])
def test_matches_the_paper_values_and_gradients(params, n):
    p1, p2, z1, z2 = _four(n, seed=n)
    symmetric = params.get("symmetric", True)
    got, want = _loss(**params)(p1, p2, z1, z2), _paper(p1, p2, z1, z2, symmetric)
    assert got.dtype == torch.float64  # float64 stays float64: no tolerance hides a step
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (p1, p2), allow_unused=True, materialize_grads=True),
        torch.autograd.grad(want, (p1, p2), allow_unused=True, materialize_grads=True),
        strict=True,
    ):
        torch.testing.assert_close(g, w)
    # the target is a constant: no gradient reaches it
    assert torch.autograd.grad(_loss(**params)(p1, p2, z1, z2), (z1, z2), allow_unused=True) == (
        None,
        None,
    )


def test_the_default_is_symmetric_in_training_mode():
    """Built from ``{}``: both directions summed (the paper's symmetrised loss), not one."""
    p1, p2, z1, z2 = _four(4, seed=3)
    got = OBJECTIVES.build("byol", {}, where="test").train()(p1, p2, z1, z2)
    torch.testing.assert_close(got, _paper(p1, p2, z1, z2, symmetric=True))
    assert not torch.allclose(got, _paper(p1, p2, z1, z2, symmetric=False))
    assert not torch.allclose(got, _paper(p1, p2, z1, z2, symmetric=True) / 2)


def test_the_options_are_kept_for_the_task():
    loss = _loss(momentum=0.99, momentum_schedule="constant")
    assert (loss.momentum, loss.momentum_schedule) == (0.99, "constant")
    assert (_loss().momentum, _loss().momentum_schedule, _loss().symmetric) == (
        0.996,
        "cosine",
        True,
    )


def test_identical_views_cost_nothing():
    z = torch.randn(8, 6, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = _loss()(z, z, z.detach().clone(), z.detach().clone())
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.autograd.grad(loss, z)[0].abs().max() < 1e-5


def test_a_collapsed_batch_is_finite_and_pulled_towards_the_target():
    """Every prediction a, every target b: the loss is 2 (2 - 2 cos(a, b)); the descent
    direction of each prediction turns it towards b. All-zero rows stay finite."""
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])
    p = a.repeat(6, 1).requires_grad_(True)
    z = b.repeat(6, 1)
    loss = _loss()(p, p, z, z)
    assert loss.item() == pytest.approx(2 * (2 - 2 * math.cos(math.pi / 4)), rel=1e-5)
    descent = -torch.autograd.grad(loss, p)[0]
    assert torch.isfinite(descent).all() and (descent @ b > 0).all()
    zeros = torch.zeros(6, 3, requires_grad=True)
    zero_loss = _loss()(zeros, zeros, zeros, zeros)
    assert (
        torch.isfinite(zero_loss) and torch.isfinite(torch.autograd.grad(zero_loss, zeros)[0]).all()
    )


@pytest.mark.parametrize(
    "params", [{"momentum": 1.0}, {"momentum": -0.1}, {"momentum_schedule": "linear"}]
)
def test_bad_options_are_clear_errors(params):
    with pytest.raises(ConfigError, match="byol needs"):
        _loss(**params)


def test_it_plugs_into_the_momentum_task_by_name():
    from replab.recipes import load_spec
    from replab.tasks import build_task

    spec = load_spec("a3-mnist-byol")
    task = build_task(spec, (1, 28, 28), 10)
    task.train_mode()
    metrics = task.step(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))
    assert torch.isfinite(metrics["loss"]) and type(task.objective).__name__ == "BYOLLoss"
