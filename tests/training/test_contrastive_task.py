"""The SimCLR task: two on-device views, one forward pass, NT-Xent on the projections."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.spec import validate_spec
from replab.tasks import build_task

RAW = {
    "task": "contrastive",
    "augment": [
        {"name": "random_resized_crop", "scale": [0.5, 1.0]},
        {"name": "rotation", "degrees": 10},
    ],
    "model": {
        "encoder": {"name": "mlp", "hidden": [32], "latent_dim": 16},
        "projection": {"name": "projection_head", "hidden": [16], "out_dim": 8},
    },
    "objective": {"name": "nt_xent", "temperature": 0.5},
}


def test_step_gives_loss_and_pair_accuracy_and_trains():
    torch.manual_seed(0)
    task = build_task(validate_spec(RAW), (1, 12, 12), 10)
    x = torch.rand(64, 1, 12, 12)
    optimizer = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    task.train_mode()
    first = task.step(x, torch.zeros(64, dtype=torch.long))
    assert set(first) == {"loss", "pair_accuracy"} and first["loss"].ndim == 0
    for _ in range(60):
        metrics = task.step(x, torch.zeros(64, dtype=torch.long))
        optimizer.zero_grad()
        metrics["loss"].backward()
        optimizer.step()
    assert metrics["loss"] < first["loss"] - 0.5
    assert metrics["pair_accuracy"] > first["pair_accuracy"]


def test_validation_views_repeat_so_the_monitor_only_moves_with_the_model():
    task = build_task(validate_spec(RAW), (1, 12, 12), 10)
    x, y = torch.rand(32, 1, 12, 12), torch.zeros(32, dtype=torch.long)
    task.model.eval()
    a = task.step(x, y)["loss"]
    task.train_mode()
    task.step(x, y)
    task.model.eval()
    assert torch.equal(a, task.step(x, y)["loss"])


@pytest.mark.parametrize(
    "drop, message",
    [("projection", "needs model.projection"), ("augment", "needs an augment list")],
)
def test_missing_parts_are_named(drop, message):
    raw = {**RAW, "model": dict(RAW["model"])}
    if drop == "projection":
        del raw["model"]["projection"]
    else:
        raw["augment"] = []
    with pytest.raises(ConfigError, match=message):
        build_task(validate_spec(raw), (1, 12, 12), 10)


def test_contrastive_objective_is_refused_by_other_tasks():
    raw = {
        "model": {"encoder": {"name": "mlp"}, "decoder": {"name": "mlp_decoder"}},
        "objective": {"name": "nt_xent"},
    }
    with pytest.raises(ConfigError, match="does not fit this task"):
        build_task(validate_spec(raw), (1, 8, 8), 10)


def test_a_predictor_is_refused_with_the_task_that_takes_one():
    raw = {**RAW, "model": {**RAW["model"], "predictor": {"name": "projection_head"}}}
    with pytest.raises(ConfigError, match="no predictor") as err:
        build_task(validate_spec(raw), (1, 12, 12), 10)
    assert "momentum_contrastive" in err.value.fix
