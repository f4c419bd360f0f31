"""The label-efficiency curve of a run and of ``replab analyze``: recorded in summary.json,
drawn in the report, and computed on the same draws for every encoder of a seed."""

from __future__ import annotations

import json

import pytest

import replab

CURVE = ["probe.shots=[1, 5, 20]", "probe.draws=3", "analysis.enabled=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    return replab.run(
        "digits-autoencoder",
        "trainer.epochs=2",
        "probe.linear=true",
        "probe.pixels=true",
        *CURVE,
        runs_dir=runs,
    )


def test_a_run_records_its_curves_per_draw_with_the_full_probe_last(trained):
    summary = json.loads((trained.dir / "summary.json").read_text())
    curves, m = summary["label_efficiency"], trained.metrics
    assert curves["shots"] == [1, 5, 20] and curves["draws"] == 3
    for space in ("linear", "knn", "image.linear", "image.knn"):
        assert sorted(curves[space], key=int) == ["1", "5", "20"]
        assert all(len(v) == 3 for v in curves[space].values())
        prefix = "image." if space.startswith("image.") else ""
        name = space.removeprefix("image.")
        assert m[f"{prefix}shots.{name}.k5"] == pytest.approx(sum(curves[space]["5"]) / 3)
        assert m[f"{prefix}shots.{name}.k20"] > m[f"{prefix}shots.{name}.k1"]
    assert curves["linear.full"] == m["linear_probe.test_accuracy"]
    assert curves["image.linear.full"] == m["image.linear_probe.test_accuracy"]
    assert any("label efficiency" in f["name"] for f in summary["figures"])


def test_analyze_scores_the_same_encoder_on_the_same_draws(trained, tmp_path):
    split = ["data.val_fraction=0.15", "data.test_fraction=0.2"]  # the run's own split
    analysed = replab.analyze(trained.dir, "digits", *CURVE, *split, runs_dir=tmp_path)
    ours = json.loads((trained.dir / "summary.json").read_text())["label_efficiency"]
    theirs = json.loads((analysed.dir / "summary.json").read_text())["label_efficiency"]
    # the same latents and the same seeded draws: the very same accuracies, draw by draw
    assert theirs["linear"] == ours["linear"] and theirs["knn"] == ours["knn"]


def test_no_shots_no_curve(tmp_path):
    run = replab.run(
        "digits-autoencoder",
        "trainer.epochs=1",
        "probe.shots=[]",
        "analysis.enabled=false",
        runs_dir=tmp_path,
    )
    assert not any(k.startswith("shots.") for k in run.metrics)
    assert json.loads((run.dir / "summary.json").read_text())["label_efficiency"] is None
