"""Multi-process pieces: single-process fallbacks, the sharded loader, NT-Xent across 2 gloo ranks.

The whole `replab run` under torchrun is compared with one process in tests/runs/test_ddp_run.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from replab.cli import main
from replab.data import DeviceLoader
from replab.errors import ConfigError
from replab.objectives import OBJECTIVES
from replab.training import distributed


def test_without_torchrun_everything_is_one_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert (
        not distributed.launched()
        and distributed.setup("cpu") is False
        and not distributed.is_active()
    )
    assert (
        distributed.rank(),
        distributed.world_size(),
        distributed.local_rank(),
        distributed.is_main(),
    ) == (0, 1, 0, True)
    t = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_mean(t) is t and distributed.gather_rows(t) is t
    assert distributed.broadcast_object({"a": 1}) == {"a": 1} and distributed.all_gather_objects(
        3
    ) == [3]


def batches(loader):
    return [x.flatten().tolist() for x, _ in loader]


@pytest.mark.parametrize(("n", "trimmed"), [(20, 0), (22, 0), (21, 1), (17, 1)])
def test_sharded_loader_slices_each_global_batch_in_the_same_order(n, trimmed):
    x, y = torch.arange(n).float()[:, None], torch.arange(n)
    whole = DeviceLoader(x, y, 4, seed=3)
    shards = [DeviceLoader(x, y, 4, seed=3) for _ in range(2)]
    for rank, shard in enumerate(shards):
        shard.shard(rank, 2)
    for _ in range(2):  # two epochs: the shared generator reshuffles identically on every rank
        full, (a, b) = batches(whole), [batches(s) for s in shards]
        assert len(a) == len(b) == len(shards[0]) and all(
            len(p) == len(q) for p, q in zip(a, b, strict=True)
        )
        joined = [p + q for p, q in zip(a, b, strict=True)]
        # rank 0's slice, then rank 1's
        assert joined == [f[: len(j)] for f, j in zip(full, joined, strict=False)]
        # an odd last batch loses one row
        assert sum(map(len, full)) - sum(map(len, joined)) == trimmed


def test_sharded_loader_needs_a_batch_that_splits_evenly():
    loader = DeviceLoader(torch.zeros(10, 1), torch.zeros(10), 5)
    with pytest.raises(ConfigError, match="global batch"):
        loader.shard(0, 2)


def test_other_commands_refuse_to_run_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["recipes"]) == 2
    assert "only `replab run`" in capsys.readouterr().err


# --- losses over the global batch across 2 gloo processes ----------------------------------
def _problem():
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    torch.manual_seed(0)
    return x1, x2, torch.nn.Linear(5, 4)


def _loss(name: str):
    return OBJECTIVES.build(name, {}, where="test")


def _loss_rank(rank: int, world: int, port: int, out: Path, name: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        # the parent serves the store, as torchrun's agent does
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    torch.set_num_threads(1)
    # leaves the group as replab run does, on errors too
    with distributed.session("cpu", timeout_minutes=2) as joined:
        assert joined
        x1, x2, linear = _problem()
        model = distributed.wrap(linear, torch.device("cpu"))
        n = len(x1) // world
        rows = slice(rank * n, (rank + 1) * n)
        # one forward per backward, as the task does
        z1, z2 = model(torch.cat([x1[rows], x2[rows]])).chunk(2)
        loss = _loss(name)(z1, z2, gather=distributed.gather_rows, offset=rank * n)
        loss.backward()  # DDP averages the gradients over ranks
        torch.save(
            {
                "loss": distributed.all_reduce_mean(loss.detach()),
                "weight": linear.weight.grad,
                "bias": linear.bias.grad,
            },
            out / f"{rank}.pt",
        )
    # The group is left; skip the interpreter's teardown, where torch's C++ threads can still
    # be joinable and abort the process ("terminate called without an active exception", seen
    # on the second spawn of a session on 2 loaded cores) after the results are written.
    os._exit(0)


@pytest.mark.slow  # two spawned processes importing torch: about 30 s on 2 shared cores
@pytest.mark.parametrize("name", ["nt_xent", "barlow_twins", "vicreg"])
def test_loss_on_two_ranks_equals_one_process_on_the_whole_batch(tmp_path, name):
    """NT-Xent takes its negatives, Barlow Twins and VICReg their batch statistics from every
    rank."""
    x1, x2, linear = _problem()
    z1, z2 = linear(torch.cat([x1, x2])).chunk(2)
    loss = _loss(name)(z1, z2)
    loss.backward()
    # The store lives in this process, not in rank 0: a rank that hosts it can exit (and abort on
    # its store thread) while the other rank still talks to it.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(_loss_rank, args=(2, store.port, tmp_path, name), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(got["loss"], loss.detach(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got["weight"], linear.weight.grad, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(got["bias"], linear.bias.grad, atol=1e-6, rtol=1e-5)
