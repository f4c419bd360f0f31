"""End to end through the CLI: the default job, the A1 quick profile, and the run folder."""

from __future__ import annotations

import json

import pytest

from replab.cli import main
from replab.io import read_jsonl


def only_run(runs_dir):
    (run,) = list(runs_dir.iterdir())
    return run


@pytest.mark.heavy(10)  # seconds on one thread: tests/scheduling.py
def test_default_run_on_digits_learns_and_reports(tmp_path, capsys):
    assert main(["run", "--runs-dir", str(tmp_path)]) == 0
    run = only_run(tmp_path)
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "best.pt",
        "last.pt",
        "summary.json",
        "report.html",
        "status.json",
    ):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    # Learning floor with margin: measured 0.98 probe accuracy and 0.036 MAE on this profile.
    assert summary["metrics"]["probe.test_accuracy"] >= 0.90
    assert summary["metrics"]["test.mae"] <= 0.06
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    history = read_jsonl(run / "metrics.jsonl")
    assert len(history) == summary["epochs"] and history[-1]["epoch"] == summary["epochs"]
    html = (run / "report.html").read_text()
    # curves, monitors, reconstructions, reconstruction per epoch, probe curves, label curves,
    # confusion, t-SNE pair, PCA curve, PCA plane, interpolation, traversal, samples + hover
    # sprite
    assert html.count("data:image/png;base64,") == 14
    assert summary["metrics"]["shots.linear.k100"] > summary["metrics"]["shots.linear.k1"]
    assert all(r["val_rank"] >= 2 for r in history)  # the monitors saw no collapse
    assert set(summary["per_class"]) == {str(i) for i in range(10)}
    assert (
        all(0 <= row["f1"] <= 1 for row in summary["per_class"].values())
        and 'id="per-class"' in html
    )
    for figure in (
        "t-SNE: image space vs latent space",
        "latent interpolation 7 → 2",
        "PCA explained variance",
        "traversal",
        "random samples",
        "reconstructed after each epoch",
        "first two components",
    ):
        assert figure in html, figure
    assert 'id="latent-canvas"' in html
    for key in (
        "image.knn_accuracy",
        "latent.knn_accuracy",
        "latent.silhouette",
        "latent.tsne_trustworthiness",
    ):
        assert 0 <= summary["metrics"][key] <= 1, key
    # the encoder keeps the classes apart at least about as well as the
    # pixels do (measured 0.972 vs 0.972)
    assert summary["metrics"]["latent.knn_accuracy"] >= 0.9
    assert "probe.test_accuracy" in html and "reference" in html
    assert "wall time" in capsys.readouterr().out


def test_finetune_probe_trains_the_encoder_with_a_head(tmp_path):
    args = [
        "run",
        "trainer.epochs=5",
        "probe.finetune=true",
        "probe.finetune_trainer.epochs=15",
        "analysis.enabled=false",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    metrics = json.loads((only_run(tmp_path) / "summary.json").read_text())["metrics"]
    assert metrics["finetune.test_accuracy"] >= 0.8  # chance is 0.1
    assert 0 < metrics["finetune.test_macro_f1"] <= 1


def test_overrides_reach_the_resolved_config(tmp_path):
    assert (
        main(
            [
                "run",
                "trainer.epochs=2",
                "probe.enabled=false",
                "analysis.enabled=false",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    run = only_run(tmp_path)
    assert "epochs: 2" in (run / "config.yaml").read_text()
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2


def test_resume_finishes_an_interrupted_run(tmp_path):
    assert (
        main(
            [
                "run",
                "trainer.epochs=3",
                "probe.enabled=false",
                "analysis.enabled=false",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    run = only_run(tmp_path)
    (run / "summary.json").unlink()
    assert main(["run", "--resume", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3


@pytest.mark.data
@pytest.mark.heavy(39)  # seconds on one thread: tests/scheduling.py
def test_a1_mnist_quick_profile(tmp_path, data_dir):
    """A1 on a 20k-image MNIST subset for 6 epochs (measured: probe 0.952, MAE 0.053): a floor
    that catches broken learning."""
    args = [
        "run",
        "a1-mnist-autoencoder",
        "trainer.epochs=6",
        "data.limit_train=20000",
        f"data.root={data_dir}",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    summary = json.loads((only_run(tmp_path) / "summary.json").read_text())
    assert summary["metrics"]["probe.test_accuracy"] >= 0.92
    assert summary["metrics"]["test.mae"] <= 0.07
    assert "MNIST" in summary["data"] and "limited to 20,000" in summary["data"]


def test_datasets_lists_every_source(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "embedded" in out
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert name in out
    assert "missing" in out and "downloads to" in out


@pytest.mark.data
def test_datasets_finds_shared_data(capsys, data_dir):
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert str(data_dir / "MNIST" / "raw") in out and "cifar10-mini" in out
