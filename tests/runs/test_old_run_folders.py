"""Run folders written by replab 0.1.0 before the layer redesign still report and resume.

``tests/fixtures/runs-0.1.0`` was written by the code at commit 06f7262 (the digits
autoencoder, 3 epochs of a small MLP, analysis off): ``finished`` ran to the end (its
report.html left out, to be rebuilt), ``interrupted`` stopped after epoch 2 of 3. Resuming
it today must end at the very figures the old code's uninterrupted run reached.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from replab.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def metrics(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())["metrics"]


def test_an_old_finished_run_rebuilds_its_report(tmp_path):
    run = copy("finished", tmp_path)
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "test.mae" in html and html.count("data:image/png;base64,") >= 4
    assert main(["compare", str(run), "--out", str(tmp_path / "cmp")]) == 0


def test_an_old_interrupted_run_resumes_to_the_old_codes_figures(tmp_path):
    run = copy("interrupted", tmp_path)
    assert main(["run", "--resume", str(run)]) == 0
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    got, want = metrics(run), metrics(FIXTURES / "finished")
    for key in ("train.loss", "val.loss", "test.mae", "test.mse", "probe.test_accuracy"):
        assert got[key] == pytest.approx(want[key], rel=1e-5), key
