"""VICReg against the paper's three terms written with loops: values, gradients, every option
at non-default values, and the degenerate batches (identical views, a collapsed batch)."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("vicreg", params, where="test").train()


def _paper(z1, z2, sim=25.0, std=25.0, cov=1.0, gamma=1.0, eps=1e-4):
    """One scalar at a time: mean squared distance; per dimension the hinge on the standard
    deviation (unbiased variance); the squared off-diagonal covariances over d."""
    n, d = z1.shape
    invariance = sum((z1[b, j] - z2[b, j]) ** 2 for b in range(n) for j in range(d)) / (n * d)

    def mean(z, j):
        return sum(z[b, j] for b in range(n)) / n

    def covariance(z, i, j):
        mi, mj = mean(z, i), mean(z, j)
        return sum((z[b, i] - mi) * (z[b, j] - mj) for b in range(n)) / (n - 1)

    def v(z):
        return sum(torch.relu(gamma - torch.sqrt(covariance(z, j, j) + eps)) for j in range(d)) / d

    def c(z):
        return sum(covariance(z, i, j) ** 2 for i in range(d) for j in range(d) if i != j) / d

    return sim * invariance + std * (v(z1) + v(z2)) / 2 + cov * (c(z1) + c(z2))


OPTIONS = [
    {},  # built from {}: compared with the paper's values written in _paper's signature
    {"sim": 1.0, "std": 0.5, "cov": 3.0},
    {"gamma": 4.0, "eps": 0.01},  # a hinge that stays active
    {"sim": 0.0, "std": 0.0, "cov": 2.0},
]


@pytest.mark.parametrize("params", OPTIONS)
@pytest.mark.parametrize("n", [2, 6])
def test_matches_the_paper_values_and_gradients(params, n):
    torch.manual_seed(n)
    z1 = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    got, want = _loss(**params)(z1, z2), _paper(z1, z2, **params)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (z1, z2)), torch.autograd.grad(want, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize(
    "changed", [{"sim": 24.0}, {"std": 26.0}, {"cov": 0.9}, {"gamma": 0.9}, {"eps": 1e-3}]
)
def test_the_defaults_are_each_visible_in_the_loss(changed):
    """Every default coefficient changes the value at this batch (the hinge active on some
    dimensions), so the default-built loss pins each of them."""
    torch.manual_seed(5)
    z1 = 0.8 * torch.randn(6, 4, dtype=torch.float64)
    z2 = 0.8 * torch.randn(6, 4, dtype=torch.float64)
    got = OBJECTIVES.build("vicreg", {}, where="test").train()(z1, z2)
    torch.testing.assert_close(got, _paper(z1, z2))
    assert not torch.allclose(got, _paper(z1, z2, **changed))


def test_identical_views_cost_no_invariance():
    torch.manual_seed(0)
    z = 3 * torch.randn(32, 5, dtype=torch.float64)
    only_invariance = _loss(sim=1.0, std=0.0, cov=0.0)
    assert only_invariance(z, z.clone()).item() == pytest.approx(0.0, abs=1e-12)


def test_a_collapsed_batch_is_finite_and_pushed_apart():
    """All embeddings equal: each dimension's std is sqrt(eps), the hinge costs std * (1 -
    sqrt(eps)); the gradient is finite, and spreading the batch lowers the loss."""
    z1 = torch.ones(16, 8, requires_grad=True)
    z2 = torch.ones(16, 8, requires_grad=True)
    loss = _loss()(z1, z2)
    assert loss.item() == pytest.approx(25.0 * (1 - math.sqrt(1e-4)), rel=1e-5)
    assert all(torch.isfinite(g).all() for g in torch.autograd.grad(loss, (z1, z2)))
    spread = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    assert _loss()(z1.detach() + spread, z2.detach() + spread).item() < loss.item()


def test_gathered_rows_give_the_global_batch_loss():
    torch.manual_seed(1)
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    rest = {z1[:4].data_ptr(): z1[4:], z2[:4].data_ptr(): z2[4:]}

    def gather(local: torch.Tensor) -> torch.Tensor:  # this "rank" holds rows 0-3
        return torch.cat([local, rest[local.data_ptr()]])

    torch.testing.assert_close(_loss()(z1[:4], z2[:4], gather=gather), _loss()(z1, z2))


@pytest.mark.parametrize("params", [{"sim": -1.0}, {"gamma": 0.0}, {"eps": 0.0}])
def test_bad_options_are_clear_errors(params):
    with pytest.raises(ConfigError, match="vicreg needs"):
        _loss(**params)


def test_it_plugs_into_the_contrastive_task_by_name():
    from replab.recipes import load_spec
    from replab.tasks import build_task

    spec = load_spec("a3-mnist-simclr", ["objective={name: vicreg}"])
    task = build_task(spec, (1, 28, 28), 10)
    metrics = task.step(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))
    assert torch.isfinite(metrics["loss"]) and type(task.objective).__name__ == "VICRegLoss"
