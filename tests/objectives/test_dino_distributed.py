"""DINO's centre on two gloo processes: the global batch mean of the teacher outputs (every
rank's rows), the same on both ranks, and the loss and gradients of one process on the whole
batch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from replab.objectives import OBJECTIVES
from replab.training import distributed


def _problem():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    t1, t2 = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g) + 2.0
    torch.manual_seed(0)
    return x1, x2, t1, t2, torch.nn.Linear(5, 6)


def _two_steps(loss, linear, x1, x2, t1, t2, gather=None):
    """Two steps with the same batch: the second uses the centre the first left."""
    for _ in range(2):
        s1, s2 = linear(torch.cat([x1, x2])).chunk(2)
        value = loss(s1, s2, t1, t2, gather=gather)
    return value


def _rank(rank: int, world: int, port: int, out: Path) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    torch.set_num_threads(1)
    with distributed.session("cpu", timeout_minutes=2) as joined:
        assert joined
        x1, x2, t1, t2, linear = _problem()
        model = distributed.wrap(linear, torch.device("cpu"))
        n = len(x1) // world
        rows = slice(rank * n, (rank + 1) * n)
        loss = OBJECTIVES.build("dino", {}, where="test").train()
        value = _two_steps(
            loss, model, x1[rows], x2[rows], t1[rows], t2[rows], distributed.gather_rows
        )
        value.backward()
        torch.save(
            {
                "loss": distributed.all_reduce_mean(value.detach()),
                "center": loss.center,
                "weight": linear.weight.grad,
            },
            out / f"{rank}.pt",
        )
    os._exit(0)  # as tests/training/test_distributed.py: skip torch's thread teardown


@pytest.mark.slow  # two spawned processes importing torch: about 30 s on 2 shared cores
def test_dino_centre_is_the_global_batch_mean_on_two_ranks(tmp_path):
    x1, x2, t1, t2, linear = _problem()
    loss = OBJECTIVES.build("dino", {}, where="test").train()
    # each step's loss is the mean of per-image terms: DDP's gradient averaging over equal
    # shards gives the whole batch's gradient; only the centre needs every rank's rows
    value = _two_steps(loss, linear, x1, x2, t1, t2)
    value.backward()
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(_rank, args=(2, store.port, tmp_path), nprocs=2, join=True)
    centres = []
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(got["loss"], value.detach(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got["weight"], linear.weight.grad, atol=1e-6, rtol=1e-5)
        centres.append(got["center"])
    torch.testing.assert_close(centres[0], loss.center)
    torch.testing.assert_close(centres[1], loss.center)
    # a rank's own half alone would give another centre (the halves' means differ)
    half = OBJECTIVES.build("dino", {}, where="test").train()
    _two_steps(half, linear, x1[:4], x2[:4], t1[:4], t2[:4])
    assert not torch.allclose(half.center, loss.center)
