"""SimSiam through the contrastive task (a predictor, no momentum copy), DINO through the
momentum task (teacher on the global crops, student on every crop, its schedule told each
step), multi-crop for the two-view objectives, and the refusals that keep them apart."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import Predicted
from replab.spec import validate_spec
from replab.tasks import build_task

MLP = {"name": "mlp", "hidden": [16], "latent_dim": 8}
HEAD = {"name": "projection_head", "hidden": [16], "out_dim": 8, "batchnorm": True}
FLIP = [{"name": "horizontal_flip"}]
MULTI = [{"name": "multi_crop", "local_crops": 2}, {"name": "horizontal_flip"}]


def _task(task, objective, augment=FLIP, **parts):
    model = {"encoder": MLP, "projection": HEAD, **parts}
    raw = {"task": task, "objective": objective, "model": model, "augment": augment}
    return build_task(validate_spec(raw), (1, 8, 8), 10)


def test_simsiam_gets_a_predictor_and_stops_the_gradient_of_the_projection():
    task = _task("contrastive", {"name": "simsiam"}, predictor=HEAD)
    assert isinstance(task.model, Predicted)
    task.train_mode()
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    loss = task.step(x, torch.zeros(16))["loss"]
    assert -1 <= loss.item() <= 1
    loss.backward()
    assert task.model.predictor.net[0].weight.grad is not None
    # the loss's gradient reaches the encoder only through the predictions (the projection's
    # own output is a constant target): its projection layer still learns through p
    assert task.model.projection.net[0].weight.grad is not None


def test_simsiam_without_predictor_and_simclr_with_one_are_refused():
    with pytest.raises(ConfigError, match="needs model.predictor"):
        _task("contrastive", {"name": "simsiam"})
    with pytest.raises(ConfigError, match="no predictor for this objective"):
        _task("contrastive", {"name": "nt_xent"}, predictor=HEAD)


def test_contrastive_multi_crop_averages_the_global_pair_and_each_local_against_both():
    torch.manual_seed(0)
    task = _task("contrastive", {"name": "nt_xent"}, augment=MULTI)
    task.model.eval()
    x = torch.rand(6, 1, 8, 8)
    metrics = task.step(x, torch.zeros(6))
    views = task.augment.views(x, torch.Generator().manual_seed(20_240_613))
    z = [task.model(v) for v in views]
    loss = task.objective
    want = (
        loss(z[0], z[1])
        + (loss(z[2], z[0]) + loss(z[2], z[1])) / 2
        + (loss(z[3], z[0]) + loss(z[3], z[1])) / 2
    ) / 3
    torch.testing.assert_close(metrics["loss"], want)


def test_dino_teacher_sees_the_global_crops_and_the_student_every_crop():
    torch.manual_seed(0)
    head = {"name": "dino_head", "hidden": 16, "bottleneck": 8, "out_dim": 32}
    task = _task("momentum_contrastive", {"name": "dino"}, augment=MULTI, projection=head)
    seen = {}

    def record(s1, s2, t1, t2, gather=None, local=()):
        seen.update(student=[s1, s2, *local], teacher=[t1, t2])
        return (s1 - t1).pow(2).mean()

    task.objective.forward = record
    task.train_mode()
    task.step(torch.rand(5, 1, 8, 8), torch.zeros(5))
    assert len(seen["student"]) == 4 and len(seen["teacher"]) == 2
    assert all(s.shape == (5, 32) for s in seen["student"] + seen["teacher"])
    assert not seen["teacher"][0].requires_grad


def test_dino_trains_and_its_schedule_follows_the_steps():
    torch.manual_seed(0)
    head = {"name": "dino_head", "hidden": 16, "bottleneck": 8, "out_dim": 32}
    task = _task("momentum_contrastive", {"name": "dino"}, augment=MULTI, projection=head)
    assert task.objective.center.shape == (1, 32)  # allocated for the head's width
    task.train_mode()
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-3)
    hooks = task.step_hooks()
    assert len(hooks) == 2
    before = [p.clone() for p in task.model.target.parameters()]
    for step in range(3):
        loss = task.step(torch.rand(8, 1, 8, 8), torch.zeros(8))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for hook in hooks:
            hook(step + 1, 10)
    assert torch.isfinite(loss)
    assert task.objective.teacher_temperature() == pytest.approx(0.04 + 0.03 * (0.3 / 0.3))
    assert (task.objective.center != 0).any()
    moved = [
        not torch.equal(a, b) for a, b in zip(before, task.model.target.parameters(), strict=True)
    ]
    assert any(moved)  # the EMA teacher followed the student


def test_two_view_momentum_objectives_refuse_local_crops():
    with pytest.raises(ConfigError, match="local crops"):
        _task("momentum_contrastive", {"name": "byol"}, augment=MULTI, predictor=HEAD)
    # local_crops 0 is the two global crops: accepted
    plain = [{"name": "multi_crop", "local_crops": 0}]
    _task("momentum_contrastive", {"name": "moco", "queue": 64}, augment=plain)


def test_dino_resumes_exactly_with_its_centre_teacher_and_warm_up(tmp_path):
    """The centre and the place in the temperature warm-up are saved with the model, so a run
    stopped after epoch 2 and resumed ends as the uninterrupted one."""
    from tests.training.test_momentum_task import make_trainer, raw

    recipe = raw({"name": "dino", "warmup_fraction": 0.8}, predictor=False)
    recipe["augment"] = [{"name": "multi_crop", "local_crops": 1, "global_scale": [0.5, 1.0]}]
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
    assert 0 < float(resumed.task.objective.progress) < 0.8  # mid warm-up, not restarted
    resumed.fit()
    losses = [[r["train_loss"], r["val_loss"]] for r in straight.history]
    assert [[r["train_loss"], r["val_loss"]] for r in resumed.history] == losses
    for key, value in straight.task.state_dict().items():  # centre and progress
        assert torch.equal(value, resumed.task.state_dict()[key]), key
    weights = resumed.model.state_dict()
    assert all(torch.equal(v, weights[k]) for k, v in straight.model.state_dict().items())
