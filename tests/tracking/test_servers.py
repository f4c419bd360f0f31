"""Real servers on loopback: MLflow reads back a sweep's runs, optuna-dashboard a tune study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replab.cli import main
from replab.io import read_jsonl
from replab.recipes import load_spec
from tests.tracking.conftest import BIN, free_port, get, server

FAST = ["trainer.epochs=2", "probe.enabled=false", "analysis.enabled=false"]


@pytest.mark.slow
def test_mlflow_holds_each_run_nested_under_its_sweep(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    runs = tmp_path / "runs"
    args = ["sweep", "digits-autoencoder", "--over", "model.encoder.latent_dim=[4,8]", *FAST]
    assert main([*args, f"tracking.mlflow={mlflow_server}", "--runs-dir", str(runs)]) == 0
    (sweep,) = runs.iterdir()
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("replab")
    found = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("replab.kind") == "sweep"]
    children = [r for r in found if r is not parent]
    assert len(children) == 2
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"study.html"}
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        run_dir = Path(child.data.tags["replab.run_dir"])
        stored = json.loads((run_dir / "mlflow.json").read_text())
        assert stored == {mlflow_server: child.info.run_id}  # what a resume continues
        latent = child.data.params["model.encoder.latent_dim"]
        assert latent == str(load_spec(run_dir / "config.yaml").model.encoder.params["latent_dim"])
        history = read_jsonl(run_dir / "metrics.jsonl")
        # one name per metric (docs/metrics.md): the epochs and the final value, one series
        summary = json.loads((run_dir / "summary.json").read_text())
        logged = client.get_metric_history(child.info.run_id, "train.loss")
        assert sorted((m.step, m.value) for m in logged) == sorted(
            [(r["epoch"], r["train_loss"]) for r in history]
            + [(len(history), summary["metrics"]["train.loss"])]
        )
        assert client.get_metric_history(child.info.run_id, "train_loss") == []
        assert child.data.metrics["test.mae"] == pytest.approx(summary["metrics"]["test.mae"])
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"report.html", "config.yaml", "best.pt"} <= artifacts


@pytest.mark.slow
def test_optuna_dashboard_reads_a_tune_study(tmp_path):
    pytest.importorskip("optuna_dashboard")
    space = tmp_path / "space.yaml"
    space.write_text("trainer.optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n")
    study = tmp_path / "study"
    args = ["tune", "digits-autoencoder", *FAST, "tracking.tensorboard=false", "--space"]
    assert main([*args, str(space), "--trials", "2", "--study-dir", str(study)]) == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "optuna-dashboard"),
        f"sqlite:///{study / 'optuna.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with server(command, f"{url}/api/studies", tmp_path / "dashboard.log", wait=60):
        studies = json.loads(get(f"{url}/api/studies"))["study_summaries"]
        (listed,) = studies
        assert listed["study_name"] == json.loads((study / "tune.json").read_text())["study_name"]
        detail = json.loads(get(f"{url}/api/studies/{listed['study_id']}"))
        trials = detail["trials"]
        assert len(trials) == 2 and all(t["state"] == "Complete" for t in trials)
        assert all("trainer.optimizer.lr" in {p["name"] for p in t["params"]} for t in trials)
