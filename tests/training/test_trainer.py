"""The trainer: seeded determinism, early stopping, resume after a kill, divergence."""

from __future__ import annotations

import math

import pytest
import torch

from replab.data import DeviceLoader, load_splits
from replab.errors import DivergenceError
from replab.io import load_checkpoint
from replab.spec import Component, EarlyStoppingSpec, ModelSpec, OptimizerSpec, TrainerSpec
from replab.tasks.autoencode import Autoencode
from replab.training import Trainer, seed_everything

DEVICE = torch.device("cpu")


class Interrupt(Exception):
    pass


def make_trainer(
    tmp_path=None, epochs=4, lr=2e-3, seed=0, hooks=(), early=None, keep="best", schedule="constant"
):
    seed_everything(seed)
    splits = load_splits("digits", seed=seed)
    task = Autoencode.from_spec(
        ModelSpec(
            encoder=Component(name="mlp", hidden=[32], latent_dim=8),
            decoder=Component(name="mlp_decoder", hidden=[32]),
        ),
        Component(name="l1"),
        splits.train.shape,
        10,
    )
    spec = TrainerSpec(
        epochs=epochs,
        batch_size=64,
        optimizer=OptimizerSpec(lr=lr),
        early_stopping=early,
        progress=False,
        keep=keep,
        lr_schedule=schedule,
    )
    train = DeviceLoader(splits.train.images, splits.train.labels, 64, seed=seed)
    val = DeviceLoader(splits.val.images, splits.val.labels, 512, shuffle=False)
    return Trainer(task, spec, train, val, DEVICE, checkpoint_dir=tmp_path, hooks=list(hooks))


def losses(history):
    return [(r["train_loss"], r["val_loss"]) for r in history]


def test_same_seed_same_metrics():
    a, b = make_trainer().fit(), make_trainer().fit()
    assert losses(a.history) == losses(b.history)
    c = make_trainer(seed=1).fit()
    assert losses(c.history) != losses(a.history)


def test_learning_happens():
    fit = make_trainer(epochs=6).fit()
    assert fit.history[-1]["val_loss"] < 0.7 * fit.history[0]["val_loss"]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_interruption_matches_uninterrupted(tmp_path, schedule):
    straight = make_trainer(epochs=5, schedule=schedule).fit()

    def stop_after_two(trainer, record):
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        make_trainer(tmp_path, epochs=5, hooks=[stop_after_two], schedule=schedule).fit()
    resumed = make_trainer(tmp_path, epochs=5, schedule=schedule)
    resumed.resume(tmp_path / "last.pt")
    assert len(resumed.history) == 2
    fit = resumed.fit()
    assert losses(fit.history) == losses(straight.history)


def test_early_stopping_restores_best_weights(tmp_path):
    # nothing counts as better
    early = EarlyStoppingSpec(monitor="val_loss", mode="min", patience=1, min_delta=10.0)
    trainer = make_trainer(tmp_path, epochs=10, early=early)
    fit = trainer.fit()
    assert fit.stopped_early and len(fit.history) == 2 and fit.best_epoch == 1
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 1
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, best["model"][name])


def test_divergence_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3)
    trainer.fit()
    before = (tmp_path / "last.pt").read_bytes()

    bad = make_trainer(tmp_path, epochs=5)
    bad.resume(tmp_path / "last.pt")
    with torch.no_grad():
        for p in bad.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(DivergenceError, match=r"epoch 4, step 1"):
        bad.fit()
    assert (tmp_path / "last.pt").read_bytes() == before


def test_keep_last_evaluates_the_last_epoch_and_reports_its_figures():
    # Monitoring val_loss for a MAXIMUM makes the "best" epoch the first (worst) one, so best
    # and last differ for sure. report 002 quotes its last epoch: trainer.keep=last.
    worst_is_best = EarlyStoppingSpec(monitor="val_loss", mode="max", patience=1000)
    last = make_trainer(epochs=4, lr=0.05, early=worst_is_best, keep="last")
    fit = last.fit()
    assert (
        fit.best_epoch == 1
        and fit.evaluated_epoch == 4
        and fit.evaluated_record() is fit.history[-1]
    )
    after = last.evaluate(last.val, "val")["val_loss"]
    # the last weights are the ones kept
    assert after == pytest.approx(fit.history[-1]["val_loss"], rel=1e-5)
    best = make_trainer(epochs=4, lr=0.05, early=worst_is_best).fit()
    assert best.evaluated_epoch == 1 and best.evaluated_record()["epoch"] == 1


def test_cosine_schedule_falls_from_the_set_rate_towards_zero():
    rates = []
    trainer = make_trainer(
        epochs=3,
        lr=0.01,
        schedule="cosine",
        hooks=[lambda t, r: rates.append(t.optimizer.param_groups[0]["lr"])],
    )
    trainer.fit()
    steps = 3 * len(trainer.train)
    expected = [
        0.01 * 0.5 * (1 + math.cos(math.pi * (e * len(trainer.train) - 1) / steps))
        for e in (1, 2, 3)
    ]
    assert rates == pytest.approx(expected) and rates[0] < 0.01 and rates[-1] < 0.001


def test_resuming_an_early_stopped_run_trains_no_further(tmp_path):
    """A run killed after early stopping (during evaluation) resumes into
    evaluation, not more epochs."""
    early = EarlyStoppingSpec(monitor="val_loss", mode="min", patience=1, min_delta=10.0)
    fit = make_trainer(tmp_path, epochs=10, early=early).fit()
    assert fit.stopped_early and len(fit.history) == 2
    resumed = make_trainer(tmp_path, epochs=10, early=early)
    resumed.resume(tmp_path / "last.pt")
    again = resumed.fit()
    assert len(again.history) == 2 and again.stopped_early and again.best_epoch == 1
