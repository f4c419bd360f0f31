"""SimSiam against the paper's algorithm written with loops: values and gradients (none through
the stop-gradient), the one-sided option, collapse and identical views."""

from __future__ import annotations

import math

import pytest
import torch

from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("simsiam", params, where="test")


def _paper(p1, p2, z1, z2, symmetric=True):
    """D(p, z) = -cos(p, z) one row at a time, z a constant (its .item() values)."""
    n, d = p1.shape

    def dist(p, z):
        total = 0
        for i in range(n):
            p_norm = torch.sqrt(sum(p[i, j] ** 2 for j in range(d)))
            z_norm = math.sqrt(sum(z[i, j].item() ** 2 for j in range(d)))
            total = total - sum(p[i, j] * z[i, j].item() for j in range(d)) / (p_norm * z_norm)
        return total / n

    return dist(p1, z2) / 2 + dist(p2, z1) / 2 if symmetric else dist(p1, z2)


def _four(n=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in "1234"]


@pytest.mark.parametrize("symmetric", [True, False])
def test_simsiam_equals_the_paper_value_and_gradient(symmetric):
    p1, p2, z1, z2 = _four()
    got = _loss(symmetric=symmetric)(p1, p2, z1, z2)
    want = _paper(p1, p2, z1, z2, symmetric)
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got, [p1, p2, z1, z2], allow_unused=True)
    want_grads = torch.autograd.grad(want, [p1, p2], allow_unused=True)
    torch.testing.assert_close(grads[0], want_grads[0])
    if symmetric:
        torch.testing.assert_close(grads[1], want_grads[1])
    else:
        assert grads[1] is None
    assert grads[2] is None and grads[3] is None  # stop-gradient on the projections


def test_identical_views_and_collapse_reach_the_floor_of_minus_one():
    z = torch.randn(6, 4, dtype=torch.float64)
    assert _loss()(z, z, z, z).item() == pytest.approx(-1.0)
    constant = torch.ones(6, 4, dtype=torch.float64)
    assert _loss()(constant, constant, constant, constant).item() == pytest.approx(-1.0)
    zero = torch.zeros(6, 4, dtype=torch.float64)  # a zero row counts as orthogonal, not NaN
    assert _loss()(zero, zero, constant, constant).item() == 0.0


def test_declares_its_predictor_and_view_target():
    cls = OBJECTIVES.get("simsiam")
    assert cls.target == "views" and cls.uses_predictor


def test_shapes_are_checked():
    p1, p2, z1, z2 = _four()
    with pytest.raises(ValueError):
        _loss()(p1, p2[:, :3], z1, z2)
