"""The momentum_contrastive task (BYOL, MoCo v2): the target is a model part that no optimizer
sees, starts equal to the online network, follows it by the task's step hook on the
objective's schedule, and is saved (with MoCo's queue) so a resumed run continues exactly."""

from __future__ import annotations

import math

import pytest
import torch

from replab.data import DeviceLoader, load_splits
from replab.errors import CheckpointError, ConfigError
from replab.io import load_checkpoint, save_checkpoint
from replab.models import Momentum, momentum_at
from replab.spec import validate_spec
from replab.tasks import build_task
from replab.training import Trainer, seed_everything
from replab.training.optimizers import build_optimizer

DEVICE = torch.device("cpu")


def raw(objective: dict, predictor: bool = True, **trainer) -> dict:
    model = {
        "encoder": {"name": "mlp", "hidden": [32], "latent_dim": 16},
        "projection": {"name": "projection_head", "hidden": [16], "out_dim": 8, "batchnorm": True},
        "init": "kaiming",
    }
    if predictor:
        model["predictor"] = {"name": "projection_head", "hidden": [16], "out_dim": 8}
    return {
        "task": "momentum_contrastive",
        "augment": [{"name": "random_resized_crop", "scale": [0.5, 1.0]}],
        "model": model,
        "objective": objective,
        "trainer": {"epochs": 3, "batch_size": 64, "progress": False, **trainer},
    }


BYOL = raw({"name": "byol"})
MOCO = raw({"name": "moco", "queue": 100, "momentum": 0.9}, predictor=False)


def make_trainer(recipe: dict, tmp_path=None, hooks=(), step_hooks=()):
    seed_everything(0)
    spec = validate_spec(recipe)
    splits = load_splits("digits", seed=0)
    task = build_task(spec, splits.train.shape, 10)
    train = DeviceLoader(splits.train.images, splits.train.labels, 64, seed=0)
    val = DeviceLoader(splits.val.images, splits.val.labels, 512, shuffle=False)
    return Trainer(
        task,
        spec.trainer,
        train,
        val,
        DEVICE,
        checkpoint_dir=tmp_path,
        hooks=list(hooks),
        step_hooks=list(step_hooks),
    )


def test_the_target_starts_as_the_online_network_and_is_never_optimized():
    task = build_task(validate_spec(BYOL), (1, 8, 8), 10)
    target = task.model.target
    assert isinstance(target, Momentum)
    online = dict(task.model.encoder.state_dict())
    copied = {
        k[len("encoder.") :]: v for k, v in target.module.state_dict().items() if "encoder" in k
    }
    assert online.keys() == copied.keys() and all(torch.equal(online[k], copied[k]) for k in online)
    assert not any(p.requires_grad for p in target.parameters())
    optimized = {
        id(p)
        for g in build_optimizer(
            task.model, validate_spec(BYOL).trainer.optimizer, DEVICE
        ).param_groups
        for p in g["params"]
    }
    assert optimized.isdisjoint(map(id, target.parameters()))
    assert any(k.startswith("target.") for k in task.model.state_dict())  # saved with the model
    assert not any(
        k.startswith("target.") for k, _ in task.model.named_parameters() if _.requires_grad
    )


def test_update_is_the_exponential_moving_average():
    online = torch.nn.Linear(3, 2)
    target = Momentum(online)
    before = target.module.weight.clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    target.update(0.75)
    torch.testing.assert_close(target.module.weight, 0.75 * before + 0.25 * online.weight)


def test_momentum_follows_byols_cosine_from_base_to_one_or_stays_constant():
    assert momentum_at(0.996, 0, 100, "cosine") == pytest.approx(0.996)
    assert momentum_at(0.996, 50, 100, "cosine") == pytest.approx(0.998)
    assert momentum_at(0.996, 100, 100, "cosine") == pytest.approx(1.0)
    assert momentum_at(0.999, 70, 100, "constant") == 0.999


def _cosine(base: float, k: int, total: int) -> float:
    """BYOL's schedule (section 3.2): tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * k / total) + 1.0) / 2.0


EXACT = {"rel": 0.0, "abs": 1e-15}  # float64: a step off moves tau by >= 1e-11 here


@pytest.mark.parametrize("total", [7, 100, 10_000])
def test_the_cosine_momentum_at_the_first_middle_and_last_steps_in_float64(total):
    """pytest.approx's default rel=1e-6 hides a step off at either end (tau moves by 1e-6 at
    K = 100): compared here to 1e-15, at the first two, the middle and the last two steps."""
    for k in (0, 1, total // 2, total - 1, total):
        assert momentum_at(0.996, k, total, "cosine") == pytest.approx(
            _cosine(0.996, k, total), **EXACT
        )
    assert momentum_at(0.996, 0, total, "cosine") == pytest.approx(0.996, **EXACT)
    assert momentum_at(0.996, total, total, "cosine") == 1.0
    assert momentum_at(0.996, total + 3, total, "cosine") == 1.0  # past the end: stays 1
    if total % 2 == 0:
        assert momentum_at(0.996, total // 2, total, "cosine") == pytest.approx(0.998, **EXACT)
    assert all(momentum_at(0.999, k, total, "constant") == 0.999 for k in (0, total // 2, total))


@pytest.mark.parametrize(
    ("recipe", "base", "schedule"), [(BYOL, 0.996, "cosine"), (MOCO, 0.9, "constant")]
)
def test_the_task_moves_the_target_with_the_momentum_of_the_steps_before(
    monkeypatch, recipe, base, schedule
):
    """After optimizer step ``done`` of K the EMA uses tau_{done - 1}: the first update the base
    momentum itself, the last 1 - (1 - base) (1 - cos(pi / K)) / 2, just under 1."""
    task = build_task(validate_spec(recipe), (1, 8, 8), 10)
    seen: list[float] = []
    monkeypatch.setattr(task.model.target, "update", seen.append)
    total = 40
    steps = (1, 2, 20, 21, 39, 40)
    for done in steps:
        for hook in task.step_hooks():
            hook(done, total)
    if schedule == "constant":
        assert seen == [base] * len(steps)
    else:
        assert seen == [pytest.approx(_cosine(base, done - 1, total), **EXACT) for done in steps]
        assert seen[0] == pytest.approx(base, **EXACT) and seen[-1] < 1.0


def test_a_run_uses_the_momentum_of_every_step_in_order(monkeypatch):
    """Through the trainer: the K updates of a run use tau_0, tau_1, ..., tau_{K-1}."""
    seen: list[float] = []
    update = Momentum.update

    def recording(self, m):
        seen.append(m)
        update(self, m)

    monkeypatch.setattr(Momentum, "update", recording)
    trainer = make_trainer({**BYOL, "trainer": {**BYOL["trainer"], "epochs": 1}})
    trainer.fit()
    total = len(trainer.train)
    assert total > 2 and seen == [
        pytest.approx(_cosine(0.996, k, total), **EXACT) for k in range(total)
    ]


def test_update_is_the_exponential_moving_average_in_float64():
    """Several updates at different momenta, each compared to m * target + (1 - m) * online in
    float64 (a float32 step or a swapped weight would show); buffers are not averaged."""
    torch.manual_seed(0)
    online = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3)).double()
    target = Momentum(online)
    expected = [p.detach().clone() for p in target.module.parameters()]
    for m in (0.996, 0.9990000001, 0.5, 0.0):
        with torch.no_grad():
            for p in online.parameters():
                p.add_(torch.randn_like(p))
            online[1].running_mean.add_(1.0)
        target.update(m)
        expected = [
            m * e + (1 - m) * o.detach() for e, o in zip(expected, online.parameters(), strict=True)
        ]
        for got, want in zip(target.module.parameters(), expected, strict=True):
            assert got.dtype == torch.float64
            torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-15)
    assert torch.equal(target.module[1].running_mean, torch.zeros(3))


def test_the_task_step_hook_moves_the_target_after_every_optimizer_step():
    """A trainer step hook runs after the task's: it sees each step's EMA already applied."""
    seen: list[float] = []
    snapshot: dict = {}

    def check(trainer, done):
        model = trainer.task.model
        online = model.encoder.net[0].weight.detach()
        target = model.target.module.encoder.net[0].weight
        total = trainer.spec.epochs * len(trainer.train)
        m = momentum_at(0.996, done - 1, total, "cosine")
        if snapshot:
            torch.testing.assert_close(target, m * snapshot["target"] + (1 - m) * online)
            seen.append(m)
        snapshot["target"] = target.clone()

    trainer = make_trainer(
        {**BYOL, "trainer": {**BYOL["trainer"], "epochs": 2}}, step_hooks=[check]
    )
    trainer.fit()
    assert len(seen) == 2 * len(trainer.train) - 1 and seen == sorted(seen)


@pytest.mark.parametrize("recipe", [BYOL, MOCO], ids=["byol", "moco"])
def test_resume_restores_target_and_queue_exactly(tmp_path, recipe):
    straight = make_trainer(recipe)
    straight.fit()

    class Interrupt(Exception):
        pass

    def stop_after_two(trainer, record):
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        make_trainer(recipe, tmp_path, hooks=[stop_after_two]).fit()
    resumed = make_trainer(recipe, tmp_path)
    resumed.resume(tmp_path / "last.pt")
    resumed.fit()
    losses = [[r["train_loss"], r["val_loss"]] for r in straight.history]
    assert [[r["train_loss"], r["val_loss"]] for r in resumed.history] == losses
    weights = resumed.model.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in straight.model.state_dict().items())
    for key, value in straight.task.state_dict().items():  # MoCo's queue and pointer
        assert torch.equal(value, resumed.task.state_dict()[key])


def test_a_checkpoint_without_the_queue_is_refused(tmp_path):
    make_trainer({**MOCO, "trainer": {**MOCO["trainer"], "epochs": 1}}, tmp_path).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["task"]["queue"].shape == (100, 8)
    del state["task"]
    save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(CheckpointError, match="task: missing"):
        make_trainer(MOCO, tmp_path).resume(tmp_path / "last.pt")


def test_sync_batchnorm_is_a_no_op_in_one_process():
    trainer = make_trainer({**BYOL, "trainer": {**BYOL["trainer"], "sync_batchnorm": True}})
    kinds = {type(m) for m in trainer.model.modules()}
    assert torch.nn.BatchNorm1d in kinds and torch.nn.SyncBatchNorm not in kinds


@pytest.mark.parametrize(
    ("change", "message"),
    [({"projection": None}, "needs model.projection"), ({"augment": []}, "needs an augment list")],
)
def test_missing_parts_are_named(change, message):
    recipe = {**BYOL, "model": {**BYOL["model"]}}
    if "augment" in change:
        recipe["augment"] = []
    else:
        del recipe["model"]["projection"]
    with pytest.raises(ConfigError, match=message):
        build_task(validate_spec(recipe), (1, 8, 8), 10)


def test_views_objectives_are_refused_by_the_momentum_task():
    with pytest.raises(ConfigError, match="does not fit this task"):
        build_task(validate_spec(raw({"name": "nt_xent"})), (1, 8, 8), 10)
