"""LARS (You et al. 2017, as BYOL and Barlow Twins use it) against its update written out by
hand for one and two steps on small tensors: with and without weight decay, and 1-d
parameters (biases, norm weights) excluded from both decay and adaptation."""

from __future__ import annotations

import math

import pytest
import torch

from replab.spec import OptimizerSpec
from replab.training.optimizers import OPTIMIZERS, build_optimizer


def _by_hand(w, g, lr, wd, eta, momentum_buffer=None, m=0.9):
    """One scalar at a time: u = g + wd w, scaled by eta |w| / |u| for a matrix."""
    flat_w, flat_g = w.flatten().tolist(), g.flatten().tolist()
    if w.ndim > 1:
        u = [gi + wd * wi for gi, wi in zip(flat_g, flat_w, strict=True)]
        w_norm = math.sqrt(sum(x * x for x in flat_w))
        u_norm = math.sqrt(sum(x * x for x in u))
        trust = eta * w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        u = [trust * x for x in u]
    else:
        u = flat_g
    v = (
        u
        if momentum_buffer is None
        else [m * b + x for b, x in zip(momentum_buffer, u, strict=True)]
    )
    new = [wi - lr * vi for wi, vi in zip(flat_w, v, strict=True)]
    return torch.tensor(new, dtype=w.dtype).reshape(w.shape), v


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_two_steps_match_the_hand_written_update(wd):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    spec = OptimizerSpec(name="lars", lr=0.5, momentum=0.9, weight_decay=wd, trust_coefficient=0.02)
    optimizer = OPTIMIZERS.get("lars")([{"params": [weight, bias]}], spec, {})
    expected = {"w": (weight.detach().clone(), None), "b": (bias.detach().clone(), None)}
    for _ in range(2):
        grads = [
            torch.randn(3, 4, generator=g, dtype=torch.float64),
            torch.randn(3, generator=g, dtype=torch.float64),
        ]
        weight.grad, bias.grad = grads
        for key, grad in zip(("w", "b"), grads, strict=True):
            w, buffer = expected[key]
            expected[key] = _by_hand(w, grad, 0.5, wd, 0.02, buffer)
        optimizer.step()
        torch.testing.assert_close(weight.detach(), expected["w"][0])
        torch.testing.assert_close(bias.detach(), expected["b"][0])  # 1-d: neither decay nor trust


def test_a_zero_weight_takes_the_plain_gradient_step():
    weight = torch.zeros(2, 2, requires_grad=True)
    optimizer = OPTIMIZERS.get("lars")(
        [{"params": [weight]}], OptimizerSpec(name="lars", lr=0.1), {}
    )
    weight.grad = torch.ones(2, 2)
    optimizer.step()
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), -0.1))


def test_lars_builds_by_name_with_the_published_trust_coefficient():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    spec = OptimizerSpec(
        name="lars", lr=0.2, momentum=0.9, weight_decay=1.5e-6, groups="no_decay_bias_norm"
    )
    optimizer = build_optimizer(model, spec, torch.device("cpu"))
    assert type(optimizer).__name__ == "LARS"
    assert {g["trust_coefficient"] for g in optimizer.param_groups} == {0.001}
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    optimizer.step()  # the fused flag other optimizers get is not passed on
    assert all(torch.isfinite(p).all() for p in model.parameters())
