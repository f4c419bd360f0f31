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


# --- BYOL and MoCo v2 through the trainer on 2 gloo ranks -----------------------------------
def _join(rank: int, world: int, port: int) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    torch.set_num_threads(1)


def _momentum_trainer(objective: dict, **trainer):
    from replab.data import load_splits
    from replab.spec import validate_spec
    from replab.tasks import build_task
    from replab.training import Trainer, seed_everything

    seed_everything(0)  # every rank builds the same model and the same initial queue
    spec = validate_spec(
        {
            "task": "momentum_contrastive",
            "augment": [{"name": "random_resized_crop", "scale": [0.5, 1.0]}],
            "model": {
                "encoder": {"name": "mlp", "hidden": [32], "latent_dim": 16},
                "projection": {"name": "projection_head", "hidden": [16], "out_dim": 8},
                **(
                    {"predictor": {"name": "projection_head", "hidden": [16], "out_dim": 8}}
                    if objective["name"] == "byol"
                    else {}
                ),
            },
            "objective": objective,
            "trainer": {"epochs": 1, "batch_size": 64, "progress": False, **trainer},
        }
    )
    splits = load_splits("digits", seed=0)
    task = build_task(spec, splits.train.shape, 10)
    train = DeviceLoader(splits.train.images[:512], splits.train.labels[:512], 64, seed=0)
    val = DeviceLoader(splits.val.images, splits.val.labels, 512, shuffle=False)
    return Trainer(task, spec.trainer, train, val, torch.device("cpu"), distributed=True)


def _momentum_rank(rank: int, world: int, port: int, out: Path, name: str) -> None:
    _join(rank, world, port)
    with distributed.session("cpu", timeout_minutes=2) as joined:
        assert joined
        objective = {"name": name, **({"queue": 1024} if name == "moco" else {})}
        trainer = _momentum_trainer(objective)
        keys: list[torch.Tensor] = []
        forward = trainer.task.objective.forward

        def recording(p1, p2, z1, z2, **kw):  # this rank's keys of view 2, step by step
            if trainer.task.objective.training:
                keys.append(z2.detach().clone())
            return forward(p1, p2, z1, z2, **kw)

        trainer.task.objective.forward = recording
        trainer.fit()
        try:
            _momentum_trainer(objective, sync_batchnorm=True)
            refused = ""
        except ConfigError as err:
            refused = str(err)
        torch.save(
            {
                "target": trainer.task.model.target.state_dict(),
                "online": trainer.task.model.state_dict(),
                "task": trainer.task.state_dict(),
                "keys": keys,
                "refused": refused,
            },
            out / f"{rank}.pt",
        )
    os._exit(0)  # as _loss_rank: skip the interpreter's teardown


@pytest.mark.slow  # two spawned processes importing torch: about 30 s on 2 shared cores
@pytest.mark.parametrize("name", ["byol", "moco"])
def test_momentum_methods_on_two_ranks_keep_one_target_and_one_queue(tmp_path, name):
    """After training steps the target network is the same on both ranks; MoCo's queue holds
    the keys of both ranks, in rank order, and is the same on both. SyncBatchNorm is refused
    on CPU processes (torch has no CPU implementation), with a ConfigError."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(_momentum_rank, args=(2, store.port, tmp_path, name), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"{rank}.pt") for rank in range(2))
    for key, value in a["target"].items():
        assert torch.equal(value, b["target"][key]), key
    moved = a["target"]["module.encoder.net.0.weight"]
    assert not torch.equal(moved, a["online"]["encoder.net.0.weight"])  # it trails the online
    assert (
        "sync_batchnorm needs GPUs" in a["refused"] and "sync_batchnorm needs GPUs" in b["refused"]
    )
    if name == "moco":
        assert torch.equal(a["task"]["queue"], b["task"]["queue"])
        steps = [torch.cat(pair) for pair in zip(a["keys"], b["keys"], strict=True)]
        enqueued = torch.nn.functional.normalize(torch.cat(steps), dim=1)
        assert a["task"]["ptr"].item() == len(enqueued) == 512
        torch.testing.assert_close(a["task"]["queue"][: len(enqueued)], enqueued)
