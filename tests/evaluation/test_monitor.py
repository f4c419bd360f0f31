"""The latent-space monitors: figures checked against a direct computation, no change to what
a run trains, any of them as the early-stopping metric, and a collapse flagged once."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from replab.cli import main
from replab.data import Normalizer, load_splits
from replab.errors import ConfigError, ReplabWarning
from replab.evaluation import knn_accuracy
from replab.evaluation.monitor import Monitor
from replab.evaluation.rank import effective_rank
from replab.recipes import load_spec
from replab.spec import MonitorSpec


class Flat(nn.Module):
    def __init__(self, collapse: bool = False) -> None:
        super().__init__()
        self.collapse = collapse
        self.latent_dim = 64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        return z * 0 + 1 if self.collapse else z


class Holder:
    """What a monitor reads of a trainer: its task's encoder and its epoch count."""

    def __init__(self, encoder: nn.Module, epochs: int) -> None:
        self.task = type("T", (), {"encoder": encoder})()
        self.spec = type("S", (), {"epochs": epochs})()


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits", val_fraction=0.1, test_fraction=0.2, seed=0)


def monitor(digits, log: list, **spec) -> Monitor:
    return Monitor(
        MonitorSpec(**spec),
        digits.train,
        digits.val,
        Normalizer(),
        torch.device("cpu"),
        seed=0,
        log=log.append,
    )


def test_figures_match_a_direct_computation(digits):
    m = monitor(digits, [], train_size=300, val_size=100, knn_k=7, linear=True)
    out = m(Holder(Flat(), 4), 1)
    assert set(out) == {"val_knn", "val_rank", "val_linear"}
    assert len(m.x_train) == 300 and len(m.x_val) == 100
    # stratified: every class of the split in the sample
    assert set(m.y_train.tolist()) == set(digits.train.labels.tolist())
    z_train, z_val = m.x_train.flatten(1).float(), m.x_val.flatten(1).float()
    assert out["val_knn"] == knn_accuracy(z_train, m.y_train, z_val, m.y_val, 7, "cosine")
    assert out["val_rank"] == pytest.approx(effective_rank(z_val))
    assert 0.5 < out["val_linear"] <= 1.0  # digits' pixels separate linearly


def test_every_n_epochs_and_the_last(digits):
    m = monitor(digits, [], train_size=100, val_size=50, every=3)
    holder = Holder(Flat(), 7)
    measured = [epoch for epoch in range(1, 8) if m(holder, epoch)]
    assert measured == [3, 6, 7]


def test_a_collapse_is_flagged_once(digits):
    log: list[str] = []
    m = monitor(digits, log, train_size=100, val_size=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = m(Holder(Flat(collapse=True), 3), 1)
        m(Holder(Flat(collapse=True), 3), 2)
    assert first["val_rank"] == 0.0
    assert m.collapsed_at == 1
    assert [str(w.message) for w in caught] == [log[0]] and "collapse" in log[0]
    assert caught[0].category is ReplabWarning  # what a user must see: summary.json keeps it


def run(tmp_path, *overrides: str) -> tuple[dict, list[dict]]:
    runs = tmp_path / "runs"
    args = ["trainer.epochs=3", "analysis.enabled=false", "probe.shots=[]", *overrides]
    assert main(["run", "digits-autoencoder", *args, "--runs-dir", str(runs)]) == 0
    (folder,) = runs.iterdir()
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return json.loads((folder / "summary.json").read_text()), history


def test_monitors_change_nothing_a_run_trains(tmp_path):
    on, history_on = run(tmp_path / "on")
    off, history_off = run(tmp_path / "off", "monitor.enabled=false")
    assert all("val_knn" in r and "val_rank" in r for r in history_on)
    assert not any("val_knn" in r for r in history_off)
    for a, b in zip(history_on, history_off, strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_loss"] == b["val_loss"]
    assert on["metrics"]["test.mae"] == off["metrics"]["test.mae"]
    assert on["metrics"]["probe.test_accuracy"] == off["metrics"]["probe.test_accuracy"]
    assert any("monitors" in f["name"] for f in on["figures"])
    assert on["timings"]["monitor"] > 0


def test_val_knn_picks_the_best_checkpoint(tmp_path):
    summary, history = run(
        tmp_path,
        "trainer.epochs=4",
        "trainer.early_stopping={monitor: val_knn, mode: max, patience: 10}",
    )
    best = max(history, key=lambda r: r["val_knn"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["metrics"]["val.knn"] == best["val_knn"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.early_stopping={monitor: val_knn, mode: max}", "monitor.every=2"],
        ["trainer.early_stopping={monitor: val_knn, mode: max}", "monitor.enabled=false"],
        ["trainer.early_stopping={monitor: val_linear, mode: max}"],
    ],
)
def test_an_early_stopping_monitor_must_be_measured_every_epoch(overrides):
    with pytest.raises(ConfigError, match="monitor"):
        load_spec("digits-autoencoder", overrides)


def test_monitoring_unlabelled_images_is_refused_before_training(tmp_path, capsys):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (300, 8, 8), dtype=np.uint8))
    runs = tmp_path / "runs"
    code = main(
        [
            "run",
            "digits-autoencoder",
            "data.dataset=npz",
            f"data.root={path}",
            "probe.enabled=false",
            "analysis.enabled=false",
            "trainer.early_stopping={monitor: val_knn, mode: max}",
            "--runs-dir",
            str(runs),
        ]
    )
    assert code == 2
    assert "val_knn needs labelled train and val images" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())  # refused before any folder stays
