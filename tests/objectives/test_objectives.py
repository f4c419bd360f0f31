"""Each objective against a hand-written reference, values and gradients."""

from __future__ import annotations

import pytest
import torch

from replab.objectives import OBJECTIVES


def _check(name, pred, target, reference, **params):
    loss_fn = OBJECTIVES.build(name, params, where="test")
    a = pred.clone().requires_grad_(True)
    b = pred.clone().requires_grad_(True)
    got, want = loss_fn(a, target), reference(b, target)
    torch.testing.assert_close(got, want)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_l1_and_mse():
    torch.manual_seed(0)
    pred, target = torch.rand(8, 1, 5, 5), torch.rand(8, 1, 5, 5)
    n = pred.numel()
    _check("l1", pred, target, lambda p, t: sum((p.flatten() - t.flatten()).abs()) / n)
    _check("mse", pred, target, lambda p, t: sum((p.flatten() - t.flatten()) ** 2) / n)


def test_bce_probabilities_and_logits():
    torch.manual_seed(1)
    target = torch.rand(6, 10)
    probs = torch.rand(6, 10).clamp(0.05, 0.95)

    def ref(p, t):
        return -(t * p.log() + (1 - t) * (1 - p).log()).mean()

    _check("bce", probs, target, ref)
    logits = torch.randn(6, 10)
    _check("bce", logits, target, lambda z, t: ref(torch.sigmoid(z), t), logits=True)


def test_cross_entropy_by_hand():
    torch.manual_seed(2)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))

    def ref(z, y):
        logp = z - z.exp().sum(1, keepdim=True).log()
        return -torch.stack([logp[i, y[i]] for i in range(len(y))]).mean()

    _check("cross_entropy", logits, labels, ref)


@pytest.mark.parametrize("C", [1.0, 0.1])
def test_binary_hinge(C):
    torch.manual_seed(3)
    scores, labels = torch.randn(32, 1), torch.randint(0, 2, (32,))

    def ref(s, y):
        terms = [
            max(torch.tensor(0.0), 1 - (1.0 if y[i] == 1 else -1.0) * s[i, 0])
            for i in range(len(y))
        ]
        return C * torch.stack(terms).mean()

    _check("hinge", scores, labels, ref, C=C)


def test_multiclass_hinge_matches_weston_watkins():
    torch.manual_seed(4)
    scores, labels = torch.randn(12, 5), torch.randint(0, 5, (12,))

    def ref(s, y):
        per = []
        for i in range(len(y)):
            wrong = [torch.clamp(1 - s[i, y[i]] + s[i, j], min=0) for j in range(5) if j != y[i]]
            per.append(torch.stack(wrong).sum() / 5)
        return torch.stack(per).mean()

    _check("hinge", scores, labels, ref)
    torch.testing.assert_close(
        OBJECTIVES.build("hinge", {}, where="t")(scores, labels),
        torch.nn.MultiMarginLoss()(scores, labels),
    )


def test_objectives_declare_their_target():
    assert {OBJECTIVES.get(n).target for n in ("l1", "mse", "bce")} == {"input"}
    assert {OBJECTIVES.get(n).target for n in ("cross_entropy", "hinge")} == {"label"}
