"""DINO against the paper's algorithm written with loops: values and gradients (none into the
teacher), every option at a non-default value, the centre's update, the temperature warm-up,
local crops, and the degenerate batches (collapse, identical views)."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(**params):
    return OBJECTIVES.build("dino", params, where="test").train()


def _softmax(row, tau):
    e = [math.exp(v / tau) for v in row]
    return [v / sum(e) for v in e]


def _paper(students, teachers, center, student_temp=0.1, teacher_temp=0.04):
    """Algorithm 1, one image and one prototype at a time: H(P_t, P_s) over the pairs of a
    teacher global crop and every other crop of the student, averaged."""
    n, k = teachers[0].shape
    terms = []
    for i, t in enumerate(teachers):
        for v, s in enumerate(students):
            if v == i:
                continue
            total = 0
            for row in range(n):
                q = _softmax([t[row, j].item() - center[j] for j in range(k)], teacher_temp)
                logits = [s[row, j] / student_temp for j in range(k)]
                top = max(x.item() for x in logits)
                log_z = top + torch.log(sum(torch.exp(x - top) for x in logits))
                total = total + sum(-q[j] * (logits[j] - log_z) for j in range(k))
            terms.append(total / n)
    return sum(terms) / len(terms)


def _views(n=4, k=5, crops=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = [
        torch.randn(n, k, generator=g, dtype=torch.float64, requires_grad=True)
        for _ in range(crops)
    ]
    t = [torch.randn(n, k, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    return s, t


@pytest.mark.parametrize(
    ("params", "crops"),
    [
        ({}, 2),
        ({}, 4),  # two local crops
        ({"student_temp": 0.3, "warmup_teacher_temp": 0.2}, 3),
    ],
)
def test_dino_equals_the_paper_value_and_gradient(params, crops):
    s, t = _views(crops=crops)
    loss = _loss(**params)
    got = loss(s[0], s[1], t[0], t[1], local=s[2:])
    want = _paper(
        s,
        t,
        [0.0] * 5,
        params.get("student_temp", 0.1),
        params.get("warmup_teacher_temp", 0.04),  # step 0: the warm-up's start
    )
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got, s)
    want_grads = torch.autograd.grad(want, s)
    for a, b in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert not any(x.grad is not None for x in t)  # the teacher gets no gradient
    with torch.enable_grad():
        assert torch.autograd.grad(loss(s[0], s[1], t[0], t[1]), t, allow_unused=True) == (
            None,
            None,
        )


def test_the_centre_is_an_ema_of_the_teacher_batch_mean_and_is_used_next_step():
    s, t = _views(seed=1)
    loss = _loss(center_momentum=0.8)
    loss(s[0], s[1], t[0], t[1])
    batch = torch.cat([t[0], t[1]]).detach().mean(0)
    torch.testing.assert_close(loss.center[0], 0.2 * batch)  # from a zero centre
    centre = loss.center[0].tolist()
    got = loss(s[0], s[1], t[0], t[1])
    torch.testing.assert_close(got, _paper(s, t, centre))
    torch.testing.assert_close(loss.center[0], 0.8 * 0.2 * batch + 0.2 * batch)


def test_evaluation_leaves_the_centre_alone():
    s, t = _views()
    loss = _loss().eval()
    loss(s[0], s[1], t[0], t[1])
    assert (loss.center == 0).all()


def test_the_teacher_temperature_warms_up_linearly_then_stays():
    loss = _loss(teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_fraction=0.5)
    seen = []
    for done in (0, 25, 50, 75, 100):
        loss.step_hook(done, 100)
        seen.append(loss.teacher_temperature())
    assert seen == pytest.approx([0.04, 0.055, 0.07, 0.07, 0.07])
    s, t = _views(seed=2)
    loss.step_hook(25, 100)
    torch.testing.assert_close(loss(s[0], s[1], t[0], t[1]), _paper(s, t, [0.0] * 5, 0.1, 0.055))
    assert _loss(warmup_fraction=0.0).teacher_temperature() == 0.07
    assert "progress" in loss.state_dict()  # a resumed run keeps its place in the warm-up


def test_degenerate_batches():
    n, k = 6, 8
    # identical views and a student equal to the teacher: the cross-entropy is the teacher
    # distribution's entropy (sharp: close to 0), not 0 exactly
    z = torch.randn(n, k, dtype=torch.float64)
    value = _loss(student_temp=0.04)(z, z, z, z)
    q = torch.softmax(z / 0.04, 1)
    torch.testing.assert_close(value, -(q * q.clamp_min(1e-300).log()).sum(1).mean())
    # collapse to one constant output: the centre removes it, the teacher is uniform, the loss
    # is log K for a uniform student and the centre is that constant after many steps
    constant = torch.ones(n, k, dtype=torch.float64) * torch.arange(k)
    loss = _loss()
    first = loss(constant, constant, constant, constant)
    assert torch.isfinite(first)
    for _ in range(200):
        last = loss(constant, constant, constant, constant)
    torch.testing.assert_close(loss.center[0], constant[0])
    flat = torch.zeros(n, k, dtype=torch.float64)
    torch.testing.assert_close(
        loss(flat, flat, constant, constant), torch.tensor(math.log(k), dtype=torch.float64)
    )
    assert last > 0


@pytest.mark.parametrize(
    "params",
    [
        {"student_temp": 0.0},
        {"teacher_temp": -1.0},
        {"warmup_fraction": 1.5},
        {"center_momentum": 1.0},
        {"momentum": 1.0},
        {"momentum_schedule": "linear"},
    ],
)
def test_bad_options_are_config_errors(params):
    with pytest.raises(ConfigError):
        _loss(**params)


def test_shapes_are_checked():
    s, t = _views()
    with pytest.raises(ValueError):
        _loss()(s[0], s[1][:, :3], t[0], t[1])
