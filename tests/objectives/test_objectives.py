"""The reconstruction and classification objectives against hand-written references, values
and gradients, in training mode and float64, at the default (built from ``{}``) and at
non-default values of every option."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _check(name, pred, target, reference, **params):
    loss_fn = OBJECTIVES.build(name, params, where="test").train()
    a = pred.clone().requires_grad_(True)
    b = pred.clone().requires_grad_(True)
    got, want = loss_fn(a, target), reference(b, target)
    torch.testing.assert_close(got, want)
    got.backward()
    want.backward()
    torch.testing.assert_close(a.grad, b.grad)
    return got.detach()


F64 = torch.float64


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


def test_l1_and_mse_in_float64_element_by_element():
    torch.manual_seed(5)
    pred, target = torch.rand(3, 1, 2, 3, dtype=F64), torch.rand(3, 1, 2, 3, dtype=F64)
    pairs = list(zip(pred.flatten().tolist(), target.flatten().tolist(), strict=True))

    def l1(p, t):
        return sum(abs(a - b) for a, b in zip(p.flatten(), t.flatten(), strict=True)) / len(pairs)

    def mse(p, t):
        return sum((a - b) ** 2 for a, b in zip(p.flatten(), t.flatten(), strict=True)) / len(pairs)

    _check("l1", pred, target, l1)
    _check("mse", pred, target, mse)


@pytest.mark.parametrize("logits", [None, False, True])  # None: built from {}
def test_bce_in_float64_element_by_element(logits):
    """Probabilities (the default) clamped to [1e-7, 1 - 1e-7], or raw logits through a
    sigmoid; the mean over every element."""
    torch.manual_seed(6)
    target = torch.rand(4, 6, dtype=F64)
    if logits:
        pred = torch.randn(4, 6, dtype=F64) * 3
    else:  # two probabilities outside the clamp, to pin it
        pred = torch.rand(4, 6, dtype=F64).clamp(0.05, 0.95)
        pred[0, 0], pred[1, 1] = 1e-9, 1 - 1e-9

    def ref(p, t):
        terms = []
        for a, b in zip(p.flatten(), t.flatten(), strict=True):
            q = torch.sigmoid(a) if logits else a.clamp(1e-7, 1 - 1e-7)
            terms.append(-(b * torch.log(q) + (1 - b) * torch.log(1 - q)))
        return sum(terms) / len(terms)

    params = {} if logits is None else {"logits": logits}
    got = _check("bce", pred, target, ref, **params)
    if not logits:  # read as logits, the same numbers would give another loss
        assert not torch.allclose(got, OBJECTIVES.build("bce", {"logits": True}, "t")(pred, target))


@pytest.mark.parametrize("smoothing", [None, 0.0, 0.1, 0.3])  # None: built from {}
def test_cross_entropy_with_label_smoothing_by_hand(smoothing):
    """(1 - eps) (-log p_y) + eps / K sum_k (-log p_k), averaged over the batch."""
    torch.manual_seed(7)
    logits, labels = torch.randn(9, 4, dtype=F64), torch.randint(0, 4, (9,))
    eps = smoothing or 0.0

    def ref(z, y):
        per = []
        for i in range(len(y)):
            log_norm = torch.log(sum(torch.exp(z[i, c]) for c in range(4)))
            nll = [log_norm - z[i, c] for c in range(4)]
            per.append((1 - eps) * nll[int(y[i])] + eps / 4 * sum(nll))
        return sum(per) / len(per)

    params = {} if smoothing is None else {"label_smoothing": smoothing}
    got = _check("cross_entropy", logits, labels, ref, **params)
    if smoothing is None:  # the default is no smoothing: 0.1 would give another loss
        built = OBJECTIVES.build("cross_entropy", {"label_smoothing": 0.1}, "t")
        assert not torch.allclose(got, built(logits, labels))


HINGE = [{}, {"C": 0.1}, {"margin": 0.5}, {"C": 3.0, "margin": 2.0}]


@pytest.mark.parametrize("params", HINGE)
def test_binary_hinge_in_float64_at_every_option(params):
    C, margin = params.get("C", 1.0), params.get("margin", 1.0)
    torch.manual_seed(8)
    scores, labels = torch.randn(16, 1, dtype=F64) * 2, torch.randint(0, 2, (16,))

    def ref(s, y):
        terms = [
            torch.clamp(margin - (1.0 if y[i] == 1 else -1.0) * s[i, 0], min=0)
            for i in range(len(y))
        ]
        return C * sum(terms) / len(terms)

    _check("hinge", scores, labels, ref, **params)
    _check("hinge", scores.view(-1), labels, lambda s, y: ref(s.view(-1, 1), y), **params)


@pytest.mark.parametrize("params", HINGE)
def test_multiclass_hinge_in_float64_at_every_option(params):
    """Weston-Watkins: the wrong classes' hinges summed, divided by the number of classes K."""
    C, margin = params.get("C", 1.0), params.get("margin", 1.0)
    torch.manual_seed(9)
    scores, labels = torch.randn(10, 4, dtype=F64), torch.randint(0, 4, (10,))

    def ref(s, y):
        per = []
        for i in range(len(y)):
            true = s[i, int(y[i])]
            wrong = [torch.clamp(margin - true + s[i, j], min=0) for j in range(4) if j != y[i]]
            per.append(sum(wrong) / 4)
        return C * sum(per) / len(per)

    _check("hinge", scores, labels, ref, **params)
    torch.testing.assert_close(
        OBJECTIVES.build("hinge", params, where="t")(scores, labels),
        C * torch.nn.MultiMarginLoss(margin=margin)(scores, labels),
    )


@pytest.mark.parametrize("shape", [(12,), (12, 1)])
def test_logistic_in_float64_score_by_score(shape):
    """mean_i log(1 + exp(-(2 y_i - 1) s_i)): the logistic regression's negative
    log-likelihood, for one score per image as a vector or a column."""
    torch.manual_seed(10)
    scores, labels = torch.randn(*shape, dtype=F64) * 2, torch.randint(0, 2, (12,))

    def ref(s, y):
        terms = [
            torch.log(1 + torch.exp(-(2.0 * float(y[i]) - 1) * s.reshape(-1)[i]))
            for i in range(len(y))
        ]
        return sum(terms) / len(terms)

    _check("logistic", scores, labels, ref)


def test_logistic_refuses_several_columns():
    with pytest.raises(ConfigError, match="one score per image"):
        OBJECTIVES.build("logistic", {}, "t")(torch.zeros(3, 2), torch.zeros(3))
