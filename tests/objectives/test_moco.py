"""MoCo v2 against InfoNCE over a queue written with loops: values, gradients (none into the
keys), every option at a non-default value, in evaluation and in training mode (the loss
against the queue as it was before the batch, which is enqueued after it), the queue's ring
updates, a batch larger than the queue, the degenerate batches."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives import OBJECTIVES


def _loss(queue_rows=None, **params):
    loss = OBJECTIVES.build("moco", params, where="test")
    if queue_rows is not None:
        loss.allocate(queue_rows.shape[1])
        loss.queue = queue_rows.clone()
    return loss


def _paper(q1, q2, k1, k2, queue, temperature=0.2, symmetric=False):
    """One anchor at a time: -log(exp(q.k+/T) / (exp(q.k+/T) + sum_j exp(q.queue_j/T))) with
    unit q, k and keys that are constants."""
    n, d = q1.shape

    def unit(v):
        return v / torch.sqrt(sum(v[j] ** 2 for j in range(d)))

    def nce(q, k):
        total = 0
        for i in range(n):
            qi, ki = unit(q[i]), unit(k[i].detach())
            positive = sum(qi[j] * ki[j] for j in range(d)) / temperature
            negatives = [
                sum(qi[j] * queue[m, j] for j in range(d)) / temperature for m in range(len(queue))
            ]
            denominator = torch.exp(positive) + sum(torch.exp(v) for v in negatives)
            total = total - (positive - torch.log(denominator))
        return total / n

    loss = nce(q1, k2)
    return (loss + nce(q2, k1)) / 2 if symmetric else loss


def _explicit(q1, q2, k1, k2, queue, temperature, symmetric):
    """The same formula, vectorised for a queue too long for loops (MoCo v2's 65536 keys),
    written out as sums of exponentials rather than a cross-entropy, in float64."""

    def nce(q, k):
        q = q / q.norm(dim=1, keepdim=True)
        k = k.detach() / k.detach().norm(dim=1, keepdim=True)
        positive = (q * k).sum(1) / temperature
        negatives = torch.exp(q @ queue.T / temperature).sum(1)
        return (torch.log(torch.exp(positive) + negatives) - positive).mean()

    loss = nce(q1, k2)
    return (loss + nce(q2, k1)) / 2 if symmetric else loss


def _four(n, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)
    ]


def _queue(rows, d=4, seed=9):
    q = torch.randn(rows, d, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.normalize(q, dim=1)


OPTIONS = [
    {},
    {"temperature": 0.5, "queue": 3},
    {"symmetric": True, "queue": 7},
    {"momentum": 0.99, "momentum_schedule": "cosine"},
]


@pytest.mark.parametrize("params", OPTIONS)
@pytest.mark.parametrize("n", [1, 5])
def test_matches_the_paper_values_and_gradients(params, n):
    q1, q2, k1, k2 = _four(n, seed=n)
    queue = _queue(params.get("queue", 6))
    paper_options = {k: v for k, v in params.items() if k in ("temperature", "symmetric")}
    loss = _loss(queue, **params).eval()
    got, want = loss(q1, q2, k1, k2), _paper(q1, q2, k1, k2, queue.double(), **paper_options)
    assert got.dtype == torch.float64  # float64 stays float64: no tolerance hides a step
    torch.testing.assert_close(got, want)
    unused = {"allow_unused": True, "materialize_grads": True}
    for g, w in zip(
        torch.autograd.grad(got, (q1, q2), **unused),
        torch.autograd.grad(want, (q1, q2), **unused),
        strict=True,
    ):
        torch.testing.assert_close(g, w)
    again = loss(q1, q2, k1, k2)
    assert torch.autograd.grad(again, (k1, k2), allow_unused=True) == (None, None)


@pytest.mark.parametrize("params", OPTIONS)
@pytest.mark.parametrize("n", [1, 3])  # at most the smallest queue (3)
def test_training_mode_loss_is_against_the_queue_from_before_the_batch(params, n):
    """In training mode the loss contrasts with the queue as it was before this batch; the
    batch's view-2 keys enter it only afterwards (MoCo's Algorithm 1)."""
    q1, q2, k1, k2 = _four(n, seed=10 + n)
    before = _queue(params.get("queue", 6))
    paper_options = {k: v for k, v in params.items() if k in ("temperature", "symmetric")}
    loss = _loss(before, **params).train()
    got = loss(q1, q2, k1, k2)
    want = _paper(q1, q2, k1, k2, before.double(), **paper_options)
    torch.testing.assert_close(got, want)
    for g, w in zip(torch.autograd.grad(got, q1), torch.autograd.grad(want, q1), strict=True):
        torch.testing.assert_close(g, w)
    after = _paper(q1, q2, k1, k2, loss.queue.double(), **paper_options)
    assert not torch.allclose(after, want)  # the enqueued keys change the loss: order matters
    unit = torch.nn.functional.normalize(k2.detach().float(), dim=1)
    rows = torch.arange(n) % len(before)
    torch.testing.assert_close(loss.queue[rows], unit, rtol=0, atol=0)
    assert loss.ptr.item() == n % len(before)


def test_the_defaults_in_training_mode_against_the_explicit_formula():
    """MoCo v2 as built from ``{}``: T = 0.2 against 65536 queued keys, one-sided, compared in
    float64: the six keys enqueued among 65536 move the loss by 3e-6 (relative), inside a
    float32 tolerance of rtol 1e-5, far outside this one."""
    q1, q2, k1, k2 = _four(6, d=8, seed=3)
    loss = OBJECTIVES.build("moco", {}, where="test").train()
    loss.allocate(8)
    before = loss.queue.clone()
    assert before.shape == (65536, 8)
    got = loss(q1, q2, k1, k2)
    want = _explicit(q1, q2, k1, k2, before.double(), 0.2, False)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0.0)
    assert not torch.allclose(
        _explicit(q1, q2, k1, k2, loss.queue.double(), 0.2, False), want, rtol=1e-9, atol=0
    )
    for other in (
        _explicit(q1, q2, k1, k2, before.double(), 0.07, False),  # MoCo v1's T
        _explicit(q1, q2, k1, k2, before.double(), 0.2, True),
    ):
        assert not torch.allclose(got, other)
    assert loss.ptr.item() == 6


def test_consecutive_training_steps_see_the_earlier_steps_keys():
    queue = _queue(7)
    loss = _loss(queue, queue=7, temperature=0.3).train()
    first, second = _four(4, seed=1), _four(4, seed=2)
    loss(*first)
    after_first = queue.clone()
    after_first[:4] = torch.nn.functional.normalize(first[3].detach().float(), dim=1)
    torch.testing.assert_close(loss.queue, after_first, rtol=0, atol=0)
    got = loss(*second)
    torch.testing.assert_close(got, _paper(*second, after_first.double(), temperature=0.3))
    # 4 + 4 keys in a ring of 7: the second batch fills rows 4-6 and wraps to row 0
    unit = torch.nn.functional.normalize(second[3].detach().float(), dim=1)
    torch.testing.assert_close(loss.queue[[4, 5, 6, 0]], unit, rtol=0, atol=0)
    torch.testing.assert_close(loss.queue[1:4], after_first[1:4], rtol=0, atol=0)
    assert loss.ptr.item() == 1


def test_a_batch_the_size_of_the_queue_replaces_all_of_it_in_order():
    queue = _queue(5)
    loss = _loss(queue, queue=5).train()
    loss.ptr = torch.tensor(2)
    q1, q2, k1, k2 = _four(5, seed=4)
    loss(q1, q2, k1, k2)
    unit = torch.nn.functional.normalize(k2.detach().float(), dim=1)
    torch.testing.assert_close(loss.queue[[2, 3, 4, 0, 1]], unit, rtol=0, atol=0)
    assert loss.ptr.item() == 2  # the oldest key is again at row 2: this batch's first


@pytest.mark.parametrize("gathered", [False, True])
def test_a_batch_larger_than_the_queue_is_refused_and_leaves_it_intact(gathered):
    """More keys than the queue holds would overwrite the step's own keys out of ring order
    (the next steps would then replace the newest keys, not the oldest): a clear error,
    before the queue or its pointer change. Evaluation enqueues nothing and is fine."""
    queue = _queue(5)
    loss = _loss(queue, queue=5).train()
    loss.ptr = torch.tensor(1)
    n = 3 if gathered else 7
    q1, q2, k1, k2 = _four(n, seed=5)
    other = torch.randn(3, 4, dtype=torch.float64)
    gather = (lambda local: torch.cat([local, other])) if gathered else None
    with pytest.raises(ConfigError, match="queue holds 5 keys but one training step enqueues"):
        loss(q1, q2, k1, k2, gather=gather)
    assert torch.equal(loss.queue, queue) and loss.ptr.item() == 1
    evaluated = loss.eval()(q1, q2, k1, k2)
    torch.testing.assert_close(evaluated, _paper(q1, q2, k1, k2, queue.double()))
    assert torch.equal(loss.queue, queue)


def test_the_published_defaults():
    loss = _loss()
    assert (loss.temperature, loss.size, loss.symmetric) == (0.2, 65536, False)
    assert (loss.momentum, loss.momentum_schedule) == (0.999, "constant")


def test_training_enqueues_the_second_views_keys_in_a_ring_and_evaluation_does_not():
    queue = _queue(5, d=3)
    loss = _loss(queue, queue=5)
    q1, q2, k1, k2 = (t.float() for t in _four(3, d=3))
    loss.eval()(q1, q2, k1, k2)
    assert torch.equal(loss.queue, queue) and loss.ptr.item() == 0
    loss.train()(q1, q2, k1, k2).backward()  # the old queue is still intact for backward
    unit = torch.nn.functional.normalize(k2.detach(), dim=1)
    torch.testing.assert_close(loss.queue[:3], unit)
    assert torch.equal(loss.queue[3:], queue[3:]) and loss.ptr.item() == 3
    loss(q1, q2, k1, k2)  # 3 more keys: 2 fill the end, 1 wraps to the front
    torch.testing.assert_close(loss.queue[[3, 4, 0]], unit)
    torch.testing.assert_close(loss.queue[1:3], unit[1:])
    assert loss.ptr.item() == 1
    assert set(loss.state_dict()) == {"queue", "ptr"}


def test_gathered_keys_of_every_rank_enter_the_queue():
    other = torch.randn(2, 3)
    loss = _loss(_queue(8, d=3), queue=8)
    q1, q2, k1, k2 = (torch.randn(2, 3) for _ in range(4))
    loss.train()(q1, q2, k1, k2, gather=lambda local: torch.cat([local, other]))
    torch.testing.assert_close(
        loss.queue[:4], torch.nn.functional.normalize(torch.cat([k2, other]), dim=1)
    )


def test_identical_views_give_the_positive_its_full_similarity():
    queue = _queue(6).double()
    z = _four(4)[0]
    got = _loss(queue).eval()(z, z, z.detach(), z.detach())
    torch.testing.assert_close(got.double(), _paper(z, z, z, z, queue))


def test_a_collapsed_batch_is_finite_and_turned_towards_its_key():
    """Every query a, every key b: finite loss; each query's descent direction turns it
    towards b. All-zero queries and keys stay finite."""
    a, b = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    q = a.repeat(6, 1).requires_grad_(True)
    k = b.repeat(6, 1)
    loss = _loss(_queue(16)).eval()(q, q, k, k)
    descent = -torch.autograd.grad(loss, q)[0]
    assert torch.isfinite(loss) and torch.isfinite(descent).all() and (descent @ b > 0).all()
    zeros = torch.zeros(6, 4, requires_grad=True)
    zero_loss = _loss(_queue(16)).eval()(zeros, zeros, zeros, zeros)
    # every logit 0: the positive is one of 17 equals
    assert zero_loss.item() == pytest.approx(math.log(17), rel=1e-5)
    assert torch.isfinite(torch.autograd.grad(zero_loss, zeros)[0]).all()


@pytest.mark.parametrize(
    "params",
    [{"temperature": 0.0}, {"queue": 0}, {"momentum": 1.0}, {"momentum_schedule": "step"}],
)
def test_bad_options_are_clear_errors(params):
    with pytest.raises(ConfigError, match="moco needs"):
        _loss(**params)


def test_it_plugs_into_the_momentum_task_by_name_with_its_queue_sized():
    from replab.recipes import load_spec
    from replab.tasks import build_task

    spec = load_spec("a3-mnist-moco")
    task = build_task(spec, (1, 28, 28), 10)
    assert task.objective.queue.shape == (4096, 128)
    task.train_mode()
    metrics = task.step(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))
    assert torch.isfinite(metrics["loss"]) and task.objective.ptr.item() == 16
