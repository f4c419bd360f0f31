"""`replab study d --quick`: the linear SVM and the two autoencoders end to end on cifar10-mini.

Floors sit well below what the quick profile measured (in the comments), so they catch broken
learning, not noise. D1's accuracy gets no floor: at the report's settings SGD jumps around
the optimum (the study says so), so it is checked only against its LinearSVC optimum.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from replab.cli import main


def only(folder: Path) -> Path:
    (child,) = [p for p in folder.iterdir() if p.is_dir()]
    return child


def summary(study: Path, part: str) -> dict:
    return json.loads((study / part / "seed0" / "summary.json").read_text())


def table_row(md: str, label: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.data
@pytest.mark.heavy(9)  # seconds on one thread: tests/scheduling.py
def test_study_d_quick(tmp_path, data_dir):
    assert (
        main(["study", "d", "--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)])
        == 0
    )
    study = only(tmp_path)
    d1, d2, d3, d4 = (summary(study, p) for p in ("D1", "D2", "D3", "D4"))
    assert (
        d1["parameters"]["total"] == 3073
        and d3["parameters"]["total"] == 797_984
        and d4["parameters"]["total"] == 400_672
    )
    # measured on the quick profile: D2 test 0.755; D3 / D4 validation MSE 0.0473 / 0.0464
    # (predicting every pixel's mean scores about 0.06)
    assert d2["metrics"]["test.accuracy"] >= 0.68
    assert d3["metrics"]["val.loss"] <= 0.055 and d4["metrics"]["val.loss"] <= 0.055
    # the last epoch is evaluated, as in the report
    assert d1["evaluated_epoch"] == d1["epochs"] == 15
    assert "classes frog, horse only" in d1["data"] and "frog" not in d3["data"]

    md = (study / "study.md").read_text()
    for row in (
        "| D1 | test.accuracy | 0.608 |",
        "| D2 | test.accuracy | 0.8335 |",
        "| D3 | val.loss | 0.01478 |",
        "| D4 | parameters | 400,672 | 400,672 | 1 | +0 |",
        "| D3 | parameters | 797,984 | 797,984 | 1 | +0 |",
    ):
        assert row in md
    assert (
        "cifar10-mini" in md
        and "728 training, 311 validation and 216 test images of frog and horse" in md
    )
    # the LinearSVC optimum of each run's own objective, on the same split: converged, and
    # no worse than SGD's last iterate on the objective both minimise (measured: D1 0.274 vs
    # SGD 33.9; D2 0.0104 vs 0.0338)
    for part in ("D1", "D2"):
        svc, sgd = (
            table_row(md, f"LinearSVC at {part}'s objective"),
            table_row(md, f"{part}: SGD, last epoch"),
        )
        assert "converged" in svc[6] and float(svc[5]) <= float(sgd[5])
        assert float(svc[4]) >= 0.7  # measured 0.778 / 0.759 test accuracy
        assert float(sgd[4]) == pytest.approx(
            summary(study, part)["metrics"]["test.accuracy"], abs=1e-4
        )
    assert re.search(r"D3 and D4: train \(solid\) and validation \(dashed\) MSE", md)
    assert md.count("reconstructions (bottom)") == 2
    html = (study / "study.html").read_text()
    assert html.count("data:image/png;base64,") >= 4


@pytest.mark.parametrize(
    "value, needle",
    [
        ("[frog]", "two different CIFAR-10 classes"),
        ("[frog,frog]", "two different"),
        ("[frog,unicorn]", "the classes are airplane"),
    ],
)
def test_study_d_classes_are_validated_before_anything_runs(value, needle, tmp_path, capsys):
    assert main(["study", "d", "--set", f"classes={value}", "--runs-dir", str(tmp_path)]) == 2
    assert needle in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
