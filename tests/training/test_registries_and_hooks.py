"""The training layer's registries (optimizers, parameter groups, schedules), step hooks, and
a trainer that never changes the task it is given."""

from __future__ import annotations

import math

import pytest
import torch

from replab.errors import ConfigError
from replab.models import Classifier
from replab.spec import OptimizerSpec, TrainerSpec
from replab.training import check_trainer_spec
from replab.training.optimizers import OPTIMIZERS, PARAM_GROUPS, build_optimizer
from replab.training.schedules import SCHEDULES
from tests.training.test_trainer import make_trainer

CPU = torch.device("cpu")


def reference_factor(name: str, done: int, total: int, warmup: int) -> float:
    """Written out by hand: linear warm-up (step i at (i+1)/warmup), then constant or a half
    cosine from 1 to 0 over the remaining steps."""
    if done < warmup:
        return (done + 1) / warmup  # both schedules start from their full rate
    if name == "constant":
        return 1.0
    progress = (done - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("name", ["constant", "cosine"])
@pytest.mark.parametrize("warmup", [0, 1, 7])
def test_schedules_match_the_hand_written_curve(name, warmup):
    total = 40
    got = [SCHEDULES.get(name)(d, total, warmup) for d in range(total)]
    want = [reference_factor(name, d, total, warmup) for d in range(total)]
    assert got == pytest.approx(want, abs=1e-12)
    if warmup:
        assert got[0] == pytest.approx(1 / warmup) and got[warmup - 1] == pytest.approx(1.0)


def test_every_registered_optimizer_builds_with_its_settings():
    model = Classifier(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    assert OPTIMIZERS.names() == ["adam", "adamw", "lars", "sgd"]
    for name in OPTIMIZERS.names():
        opt = build_optimizer(
            model, OptimizerSpec(name=name, lr=0.02, weight_decay=0.03, momentum=0.5), CPU
        )
        assert type(opt).__name__.lower() == name
        assert {g["lr"] for g in opt.param_groups} == {0.02}
        assert {g["weight_decay"] for g in opt.param_groups} == {0.03}


def test_no_decay_groups_exempt_biases_and_norm_weights_only():
    model = Classifier(
        torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)), torch.nn.Linear(3, 2)
    )
    spec = OptimizerSpec(weight_decay=0.1, groups="no_decay_bias_norm", parts={"head": {"lr": 0.5}})
    opt = build_optimizer(model, spec, CPU)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    enc_linear, enc_norm = model.encoder[0], model.encoder[1]
    assert by_param[id(enc_linear.weight)] == (1e-3, 0.1)
    for p in (enc_linear.bias, enc_norm.weight, enc_norm.bias):
        assert by_param[id(p)] == (1e-3, 0.0)
    assert by_param[id(model.head.weight)] == (0.5, 0.1) and by_param[id(model.head.bias)] == (
        0.5,
        0.0,
    )
    assert len(by_param) == len(list(model.parameters()))


@pytest.mark.parametrize("key,value", [("name", "adamax"), ("groups", "by_layer")])
def test_unknown_optimizer_names_are_clear_errors_naming_the_key(key, value):
    spec = TrainerSpec(optimizer=OptimizerSpec(**{key: value}))
    with pytest.raises(ConfigError, match=f"trainer.optimizer.{key}: unknown .*{value!r}") as err:
        check_trainer_spec(spec)
    assert all(n in err.value.fix for n in (OPTIMIZERS if key == "name" else PARAM_GROUPS).names())


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ConfigError, match="trainer.lr_schedule: unknown .*'triangle'") as err:
        check_trainer_spec(TrainerSpec(lr_schedule="triangle"))
    assert "cosine" in err.value.fix


def test_step_hooks_run_after_every_optimizer_step_and_see_the_scheduled_rate():
    seen = []
    trainer = make_trainer(epochs=2, schedule="cosine")
    trainer.step_hooks.append(
        lambda t, step: seen.append((step, t.optimizer.param_groups[0]["lr"]))
    )
    trainer.fit()
    steps = 2 * len(trainer.train)
    assert [s for s, _ in seen] == list(range(1, steps + 1))
    want = [2e-3 * reference_factor("cosine", d, steps, 0) for d in range(steps)]
    assert [lr for _, lr in seen] == pytest.approx(want)


def test_warmup_epochs_ramp_the_rate_linearly():
    trainer = make_trainer(epochs=2)
    trainer.spec = trainer.spec.model_copy(update={"warmup_epochs": 1.0})
    rates = []
    trainer.step_hooks.append(lambda t, step: rates.append(t.optimizer.param_groups[0]["lr"]))
    trainer.fit()
    n = len(trainer.train)
    assert rates[:n] == pytest.approx([2e-3 * (i + 1) / n for i in range(n)])
    assert rates[n:] == pytest.approx([2e-3] * n)


def test_the_trainer_leaves_the_task_as_it_was_given():
    trainer = make_trainer(epochs=1)
    task, model = trainer.task, trainer.task.model
    before = dict(vars(task))
    trainer.fit()
    assert task.model is model and "gather" not in vars(task)
    assert set(vars(task)) == set(before) and all(
        vars(task)[k] is v
        for k, v in before.items()
        if k not in ("_eval_generator", "_was_training")
    )


def test_the_step_runs_through_the_module_the_trainer_passes():
    trainer = make_trainer(epochs=1)
    calls = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls.append(len(x))
            return self.inner(x)

    trainer.train_model = Spy(trainer.model)
    trainer.fit()
    assert len(calls) == len(trainer.train)  # every training step, and no evaluation step
