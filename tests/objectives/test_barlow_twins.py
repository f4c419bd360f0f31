"""Barlow Twins against the paper's formula written with loops: values, gradients, options
(lambd, eps at non-default values) and the degenerate batches (identical views, collapse)."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("barlow_twins", params, where="test").train()


def _paper(z1: torch.Tensor, z2: torch.Tensor, lambd: float, eps: float) -> torch.Tensor:
    """Eq. 1-2 of the paper, one scalar at a time: standardise each dimension over the batch
    (biased variance), C_ij = sum_b z1[b,i] z2[b,j] / N, then the two sums."""
    n, d = z1.shape

    def standardised(z, b, i):
        column = [z[k, i] for k in range(n)]
        mean = sum(column) / n
        var = sum((v - mean) ** 2 for v in column) / n
        return (z[b, i] - mean) / torch.sqrt(var + eps)

    total = torch.zeros((), dtype=z1.dtype)
    for i in range(d):
        for j in range(d):
            c = sum(standardised(z1, b, i) * standardised(z2, b, j) for b in range(n)) / n
            total = total + ((1 - c) ** 2 if i == j else lambd * c**2)
    return total


@pytest.mark.parametrize("lambd,eps", [(0.0051, 1e-5), (0.5, 1e-5), (0.0, 1e-3), (2.0, 0.1)])
@pytest.mark.parametrize("n", [2, 5])
def test_matches_the_paper_values_and_gradients(lambd, eps, n):
    torch.manual_seed(n)
    z1 = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    got, want = _loss(lambd=lambd, eps=eps)(z1, z2), _paper(z1, z2, lambd, eps)
    torch.testing.assert_close(got, want)
    for g, w in zip(
        torch.autograd.grad(got, (z1, z2)), torch.autograd.grad(want, (z1, z2)), strict=True
    ):
        torch.testing.assert_close(g, w)


def test_the_defaults_in_training_mode_are_the_papers():
    """Built from ``{}``: lambd 0.0051 and eps 1e-5, in float64 (the paper's rounded 5e-3
    would differ by about 2% of the off-diagonal term)."""
    torch.manual_seed(7)
    z1, z2 = (torch.randn(6, 5, dtype=torch.float64) for _ in range(2))
    got = OBJECTIVES.build("barlow_twins", {}, where="test").train()(z1, z2)
    torch.testing.assert_close(got, _paper(z1, z2, 0.0051, 1e-5))
    assert not torch.allclose(got, _paper(z1, z2, 0.005, 1e-5))
    assert not torch.allclose(got, _paper(z1, z2, 0.0051, 1e-4))


def test_identical_decorrelated_views_cost_nothing_on_the_diagonal():
    """Same views: every C_ii is 1 up to eps, so only the off-diagonal term remains."""
    torch.manual_seed(0)
    z = torch.randn(64, 6, dtype=torch.float64)
    loss = _loss(lambd=0.0, eps=1e-12)(z, z.clone())
    assert loss.item() == pytest.approx(0.0, abs=1e-9)


def test_a_collapsed_batch_is_finite_and_pushed_apart():
    """All embeddings equal: C is 0, the loss is d (the whole diagonal missed), finite, and its
    gradient is finite; a small spread along the views' shared direction lowers it."""
    z1 = torch.ones(16, 8, requires_grad=True)
    z2 = torch.ones(16, 8, requires_grad=True)
    loss = _loss()(z1, z2)
    assert loss.item() == pytest.approx(8.0)
    grads = torch.autograd.grad(loss, (z1, z2))
    assert all(torch.isfinite(g).all() for g in grads)
    spread = torch.linspace(-1, 1, 16)[:, None].expand(16, 8)
    assert _loss()(z1.detach() + spread, z2.detach() + spread).item() < loss.item()


def test_gathered_rows_give_the_global_batch_loss():
    """With ``gather`` (distributed training) the statistics are the global batch's: a rank
    holding half the rows and gathering the rest computes the loss of all of them."""
    torch.manual_seed(1)
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    rest = {z1[:4].data_ptr(): z1[4:], z2[:4].data_ptr(): z2[4:]}

    def gather(local: torch.Tensor) -> torch.Tensor:  # this "rank" holds rows 0-3
        return torch.cat([local, rest[local.data_ptr()]])

    torch.testing.assert_close(_loss()(z1[:4], z2[:4], gather=gather), _loss()(z1, z2))


def test_bf16_inputs_are_standardised_in_float32():
    torch.manual_seed(2)
    z1, z2 = torch.randn(32, 6), torch.randn(32, 6)
    got = _loss()(z1.bfloat16(), z2.bfloat16())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_loss()(z1, z2).item(), rel=0.05)


@pytest.mark.parametrize("params", [{"lambd": -0.1}, {"eps": 0.0}])
def test_bad_options_are_clear_errors(params):
    with pytest.raises(ConfigError, match="barlow_twins needs"):
        _loss(**params)


def test_it_plugs_into_the_contrastive_task_by_name():
    from replab.recipes import load_spec
    from replab.tasks import build_task

    spec = load_spec("a3-mnist-simclr", ["objective={name: barlow_twins, lambd: 0.01}"])
    task = build_task(spec, (1, 28, 28), 10)
    metrics = task.step(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))
    assert torch.isfinite(metrics["loss"]) and type(task.objective).__name__ == "BarlowTwinsLoss"
