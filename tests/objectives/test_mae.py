"""MAE's loss against the paper's formula written with loops: values and gradients with and
without per-patch normalised targets, only hidden patches counted, degenerate batches."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("mae", params, where="test")


def _paper(pred, patches, mask, norm_pix=False, eps=1e-6):
    """Patch by patch: the squared error of the pixels of every hidden patch, its mean."""
    n, length, p = pred.shape
    total, hidden = 0, 0
    for i in range(n):
        for j in range(length):
            if mask[i, j] == 0:
                continue
            t = [patches[i, j, k].item() for k in range(p)]
            if norm_pix:
                mean = sum(t) / p
                var = sum((v - mean) ** 2 for v in t) / (p - 1)
                t = [(v - mean) / math.sqrt(var + eps) for v in t]
            total = total + sum((pred[i, j, k] - t[k]) ** 2 for k in range(p)) / p
            hidden += 1
    return total / hidden


def _batch(seed=0, n=3, length=5, p=4):
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(n, length, p, generator=g, dtype=torch.float64, requires_grad=True)
    patches = torch.randn(n, length, p, generator=g, dtype=torch.float64)
    mask = (torch.rand(n, length, generator=g) < 0.6).double()
    mask[0, 0] = 1.0
    return pred, patches, mask


@pytest.mark.parametrize("params", [{}, {"norm_pix": True}, {"norm_pix": True, "eps": 0.5}])
def test_mae_equals_the_paper_value_and_gradient(params):
    pred, patches, mask = _batch()
    got = _loss(**params)(pred, patches, mask)
    (grad,) = torch.autograd.grad(got, pred)
    want = _paper(pred, patches, mask, **params)
    (want_grad,) = torch.autograd.grad(want, pred)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(grad, want_grad)
    assert (grad[mask == 0] == 0).all()  # a visible patch gets no gradient


def test_norm_pix_changes_the_target():
    pred, patches, mask = _batch(1)
    assert not torch.isclose(
        _loss()(pred, patches, mask), _loss(norm_pix=True)(pred, patches, mask)
    )


def test_mae_degenerate_batches():
    pred, patches, mask = _batch(2)
    # a perfect prediction of every hidden patch costs 0 whatever the visible ones are
    exact = torch.where(mask[..., None].bool(), patches, torch.randn_like(patches))
    assert _loss()(exact, patches, mask) == 0
    # no hidden patch: 0, not NaN
    assert _loss()(pred, patches, torch.zeros_like(mask)) == 0
    # flat patches under norm_pix: targets 0 (eps keeps them finite)
    flat = torch.ones_like(patches)
    value = _loss(norm_pix=True)(torch.zeros_like(pred), flat, mask)
    assert torch.isfinite(value) and value == 0


def test_mae_checks_options_and_shapes():
    with pytest.raises(ConfigError):
        _loss(eps=0.0)
    pred, patches, mask = _batch()
    with pytest.raises(ValueError):
        _loss()(pred, patches[:, :4], mask)
    with pytest.raises(ValueError):
        _loss()(pred, patches, mask[:, :4])
