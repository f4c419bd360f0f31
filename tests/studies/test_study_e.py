"""`replab study e --quick`: Fashion-MNIST autoencoder, search, transfer and VAE end to end.

Floors sit well below what the quick profile measured (comments); chance is 0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from replab.cli import main
from tests.studies.test_studies import only, summary


@pytest.mark.data
@pytest.mark.heavy(78)  # seconds on one thread: tests/scheduling.py
def test_study_e_quick(tmp_path, data_dir):
    assert (
        main(["study", "e", "--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)])
        == 0
    )
    study = only(tmp_path)
    adam, sgd = (summary(study / p / "seed0")["metrics"] for p in ("E1.adam", "E1.sgd"))
    # measured 0.132 vs 0.192: SGD at Adam's rate barely moves
    assert adam["val.loss"] < 0.8 * sgd["val.loss"]
    trials = (study / "E2" / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 3 and (study / "E2" / "best.yaml").is_file()
    # trial 0 is report 003's tuned point (from_report)
    assert "queued by --enqueue" in trials[1] and ",185," in trials[1]
    e3, cnn = summary(study / "E3" / "seed0"), summary(study / "E3.cnn" / "seed0")
    # measured 0.607, 0.577
    assert e3["metrics"]["test.accuracy"] >= 0.45 and cnn["metrics"]["test.accuracy"] >= 0.4
    assert set(e3["per_class"]) >= {"T-shirt/top", "Ankle boot"}
    # refit: the final fit sees all training images
    assert "validation images included" in e3["data"]
    long = summary(study / "E3.long" / "seed0")
    assert long["epochs"] == 10 and long["metrics"]["test.accuracy"] >= 0.45  # measured 0.607
    vae = summary(study / "E5" / "seed0")
    assert any(f["name"] == "random samples decoded from the prior N(0, I)" for f in vae["figures"])
    assert vae["metrics"]["test.kl"] > 0
    md = (study / "study.md").read_text()
    assert (
        "| E3 | test.accuracy | 0.9008 |" in md
        and "| Shirt |" in md
        and "E5: variational autoencoder" in md
    )

    # --resume --seeds 2 grows the study: seed 0's runs (and the search) are reused, seed 1 runs,
    # and seed 1's classifier fine-tunes seed 1's autoencoder, not seed 0's
    assert main(["study", "--resume", str(study), "--seeds", "2"]) == 0
    assert json.loads((study / "study.json").read_text())["seeds"] == [0, 1]
    assert (study / "E5" / "seed1" / "summary.json").is_file() and len(
        (study / "E2" / "trials.csv").read_text().splitlines()
    ) == 1 + 3
    e3_seed1 = yaml.safe_load((study / "E3" / "seed1" / "config.yaml").read_text())
    assert Path(e3_seed1["model"]["pretrained"]["path"]) == study / "E4" / "seed1"
    assert "± " in (study / "study.md").read_text()
    assert main(["study", "--resume", str(study), "--seeds", "1"]) == 2  # a study never drops runs
