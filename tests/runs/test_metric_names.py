"""One name per metric (issue 34, point 6; docs/metrics.md): a run and `replab analyze` name
the same probes alike, every name a run writes is in the one table, epoch records map onto
the same names, and a folder written under the old names reads under the new ones."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import replab
from replab.cli import main
from replab.runs import rundir

REPO = Path(__file__).resolve().parents[2]
OLD_FOLDER = REPO / "tests" / "fixtures" / "runs-0.1.0" / "finished"


def documented() -> list[re.Pattern]:
    """The names in the first column of docs/metrics.md's table, placeholders as wildcards."""
    rows = [r for r in (REPO / "docs" / "metrics.md").read_text().splitlines() if r[:3] == "| `"]
    names = [n for row in rows for n in re.findall(r"`([^`]+)`", row.split("|")[1])]
    return [re.compile(re.sub(r"<[^>]+>", r"[A-Za-z0-9_.]+", re.escape(n)) + "$") for n in names]


def test_every_name_a_full_run_writes_is_in_the_table(tmp_path):
    run = replab.run(
        "digits-autoencoder",
        "trainer.epochs=2",
        "probe.trainer.epochs=2",
        "probe.linear=true",
        "probe.pixels=true",
        "probe.finetune=true",
        "analysis.tsne_sample=300",
        runs_dir=tmp_path,
    )
    assert run is not None
    patterns = documented()
    epochs = {k for r in run.history for k in r if k not in ("epoch", "best")}
    assert "val.loss" in run.history[-1] and "val_loss" not in run.history[-1]
    on_disk = rundir.read_metrics(run.dir)[-1]  # the file keeps its spelling
    assert run.history[-1]["val.loss"] == on_disk["val_loss"]
    names = set(run.metrics) | epochs
    assert {"linear_probe.test_accuracy", "probe.test_accuracy", "val.loss"} <= names
    missing = sorted(n for n in names if not any(p.match(n) for p in patterns))
    assert missing == [], f"not in docs/metrics.md: {missing}"
    assert not any(p.match("val_loss") for p in patterns)  # the table names val.loss alone


def test_epoch_keys_map_onto_the_final_names():
    assert rundir.metric_name("val_loss") == "val.loss"
    assert rundir.metric_name("train_accuracy") == "train.accuracy"
    assert rundir.metric_name("seconds") == "seconds" and rundir.metric_name("lr") == "lr"
    assert rundir.metric_name("probe_mlp.test_accuracy") == "probe.test_accuracy"


def test_a_folder_with_the_old_probe_names_reads_under_the_new_ones(tmp_path, capsys):
    """An analysis folder written before the rename (probe_mlp.*, probe_linear.*)."""
    folder = tmp_path / "old-analysis"
    shutil.copytree(OLD_FOLDER, folder)
    summary = json.loads((folder / "summary.json").read_text())
    metrics = {k: v for k, v in summary["metrics"].items() if not k.startswith("probe.")}
    metrics |= {"probe_mlp.test_accuracy": 0.91, "probe_linear.test_accuracy": 0.87}
    (folder / "summary.json").write_text(json.dumps({**summary, "metrics": metrics}))
    run = replab.load(folder)
    assert run.metrics["probe.test_accuracy"] == 0.91
    assert run.metrics["linear_probe.test_accuracy"] == 0.87
    assert not any(k.startswith(("probe_mlp", "probe_linear")) for k in run.metrics)
    assert main(["report", str(folder)]) == 0
    page = (folder / "report.html").read_text()
    assert "linear_probe.test_accuracy" in page and "probe_linear" not in page
    assert json.loads((folder / "summary.json").read_text())["metrics"] == metrics  # untouched
