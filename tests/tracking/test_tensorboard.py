"""TensorBoard: a run's event files read back with TensorBoard's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replab.cli import main
from replab.io import read_jsonl
from replab.recipes import load_spec
from tests.tracking.conftest import closed_port

TINY = ["trainer.epochs=2", "analysis.enabled=false", "probe.trainer.epochs=3"]


def only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert main(["run", "digits-autoencoder", *TINY, "--runs-dir", str(runs)]) == 0
    return only_run(runs)


def test_epoch_scalars_equal_metrics_jsonl(run):
    acc = events(run / "tensorboard")
    history = read_jsonl(run / "metrics.jsonl")
    for key in ("train_loss", "train_mae", "val_loss", "val_mae"):
        tag = key.replace("_", "/", 1)
        logged = [(e.step, e.value) for e in acc.Scalars(tag)]
        expected = [(r["epoch"], r[key]) for r in history]
        assert [s for s, _ in logged] == [s for s, _ in expected], tag
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6), tag
    lr = load_spec(run / "config.yaml").trainer.optimizer.lr  # a constant schedule
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx([lr, lr])
    summary = json.loads((run / "summary.json").read_text())
    final = acc.Scalars("final/probe.test_accuracy")
    assert final[-1].value == pytest.approx(summary["metrics"]["probe.test_accuracy"])


def test_figures_hparams_and_projector(run):
    acc = events(run / "tensorboard")
    images = acc.Tags()["images"]
    assert any("reconstructions" in t for t in images)
    assert any("reconstructed after each epoch" in t for t in images)  # the trail
    # the HParams plugin's records: the run's settings against its final metrics
    hparams = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"model.encoder.latent_dim" in hparams["_hparams_/session_start_info"]
    config = (run / "tensorboard" / "projector_config.pbtxt").read_text()
    assert "sprite" in config and "metadata_path" in config
    folder = run / "tensorboard" / "00002" / "test_latents"
    assert (folder / "sprite.png").stat().st_size > 0
    labels = (folder / "metadata.tsv").read_text().split()
    assert len(labels) == 359 and set(labels) == {str(i) for i in range(10)}  # digits' test


def test_off_and_a_refusing_mlflow_server_cost_nothing(tmp_path, capsys):
    """tracking.tensorboard=false writes no events; an MLflow URI to a closed port is a
    warning, and the run finishes."""
    uri = f"http://127.0.0.1:{closed_port()}"
    args = ["trainer.epochs=1", "probe.enabled=false", "analysis.enabled=false"]
    overrides = [*args, "tracking.tensorboard=false", f"tracking.mlflow={uri}"]
    assert main(["run", "digits-autoencoder", *overrides, "--runs-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    out = capsys.readouterr().out
    assert "warning: MLflow failed" in out and "the run goes on without it" in out
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert not (run / "tensorboard").exists()
