"""`replab study f --quick`: linear baselines, triplet learning and its probes on cifar10-mini.

Floors sit well below what the quick profile measured (comments); chance is 0.5 for the
two-class logistic regression and for a triplet, 0.1 for the ten classes.
"""

from __future__ import annotations

import pytest

from replab.cli import main
from replab.recipes import load_spec
from tests.studies.test_studies import only, summary


def metrics(run) -> dict:
    return summary(run)["metrics"]


@pytest.mark.data
@pytest.mark.heavy(17)  # seconds on one thread: tests/scheduling.py
def test_study_f_quick(tmp_path, data_dir):
    assert (
        main(["study", "f", "--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)])
        == 0
    )
    study = only(tmp_path)
    # measured: logistic val 0.790; softmax val 0.322 / 0.310 / 0.250 at batch 256 / 1024 / 4096
    assert metrics(study / "F1.logistic" / "seed0")["val.accuracy"] >= 0.70
    softmax = {p.name: metrics(p)["val.accuracy"] for p in (study / "F1.softmax").iterdir()}
    assert set(softmax) == {f"batch_size_{b}-seed_0" for b in (256, 1024, 4096)}
    assert softmax["batch_size_256-seed_0"] >= 0.22
    # measured: test triplet accuracy 0.619, latent kNN 0.201, probe 0.231; fine-tuned 0.254
    f2 = metrics(study / "F2" / "seed0")
    assert (
        f2["test.triplet_accuracy"] >= 0.55
        and f2["latent.knn_accuracy"] >= 0.14
        and f2["probe.test_accuracy"] >= 0.15
    )
    assert metrics(study / "F3.nn" / "seed0")["test.accuracy"] >= 0.15
    pretrained = load_spec(study / "F3.nn" / "seed0" / "config.yaml").model.pretrained
    assert pretrained.path == str(study / "F2" / "seed0")
    md = (study / "study.md").read_text()
    for row in (
        "| F1.logistic | val.accuracy | 0.815 |",
        "| F1.softmax | val.accuracy batch 256 | 0.26 |",
        "| F2 | probe.val_accuracy | 0.7744 |",
        "| F3.nn | test.accuracy | 0.8635 |",
    ):
        assert row in md
    assert "fine_tune_linear vs fine_tune_nn" in md and "cifar10-mini" in md


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("classes=[cat]", "two different"),
        ("mining=hardest", "not a triplet sampling"),
        ("batch_sizes=[0]", "positive integers"),
    ],
)
def test_study_f_options_are_checked(option, message, capsys):
    assert main(["study", "f", "--set", option]) == 2
    assert message in capsys.readouterr().err
