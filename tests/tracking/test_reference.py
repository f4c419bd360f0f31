"""A reference figure is shown only beside results on the data it was measured on."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from replab.cli import main
from replab.recipes import load_spec, read_recipe
from replab.reporting.study_report import reference_markdown
from replab.spec import reference_note
from replab.studies.framework import mark_incomparable, reference_row

FAST = ["trainer.epochs=1", "probe.enabled=false", "analysis.enabled=false"]


def test_a_recipe_overridden_to_other_data_marks_its_reference():
    assert reference_note(load_spec("a1-mnist-autoencoder")) is None
    for override in ("data.dataset=fashion_mnist", "data.limit_train=6000"):
        note = reference_note(load_spec("a1-mnist-autoencoder", [override]))
        assert note == "not comparable (reference measured on mnist, full train split)"
    note = reference_note(load_spec("d1-cifar10-svm", ["data.classes=[cat,dog]"]))
    assert (
        note == "not comparable (reference measured on cifar10, classes frog, horse, full "
        "train split)"
    )


def _recipe(tmp_path: Path) -> Path:
    raw = read_recipe("digits-autoencoder")
    raw["report"] = {"reference": {"test.mae": 0.05}, "reference_source": "a test"}
    path = tmp_path / "with-reference.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _run(tmp_path: Path, name: str, recipe: Path, *overrides: str) -> Path:
    runs = tmp_path / name
    assert main(["run", str(recipe), *FAST, *overrides, "--runs-dir", str(runs)]) == 0
    (run,) = runs.iterdir()
    return run


def test_terminal_and_report_show_the_reference_only_on_its_data(tmp_path, capsys):
    recipe = _recipe(tmp_path)
    same = _run(tmp_path, "same", recipe)
    out = capsys.readouterr().out
    assert "reference" in out.split("metric", 1)[1].splitlines()[0]  # the column is there
    assert "0.0500" in out and "not comparable" not in out
    assert json.loads((same / "summary.json").read_text())["reference"] == {"test.mae": 0.05}

    other = _run(tmp_path, "other", recipe, "data.limit_train=500")
    out = capsys.readouterr().out
    header = out.split("metric", 1)[1].splitlines()[0]
    assert "reference" not in header and "0.0500" not in out
    note = "not comparable (reference measured on digits, full train split)"
    assert f"reference: {note}" in out
    summary = json.loads((other / "summary.json").read_text())
    assert summary["reference"] == {} and summary["reference_note"] == note
    html = (other / "report.html").read_text()
    assert note in html and 'class="ref">0.05<' not in html


def test_a_study_marks_the_rows_of_parts_run_on_other_data(tmp_path):
    """--quick profiles set data.limit_train: their rows say the reference does not compare."""
    run = tmp_path / "A1" / "seed0"
    run.mkdir(parents=True)
    note = "not comparable (reference measured on mnist, full train split)"
    summary = {"name": "a1", "metrics": {"test.mae": 0.04}, "reference_note": note}
    (run / "summary.json").write_text(json.dumps(summary))
    rows = [reference_row("A1", "test.mae", 0.03, [0.04]), reference_row("A2", "x", 1.0, [1.0])]
    mark_incomparable(tmp_path, rows)
    assert rows[0]["note"] == note and "note" not in rows[1]
    table = reference_markdown(rows)
    assert f"| {note} |" in table and "| +0.01 |" not in table
    assert "| +0 |" in table  # A2 ran on the reference's own data
