"""`replab study c --quick`: C1-C4 end to end on cifar10-mini, with learning floors.

The floors sit well below what the quick profile measured (in the comments): chance is
0.10 for the classes and 0.50 for the binary rotation.
"""

from __future__ import annotations

import pytest

from replab.cli import main
from replab.recipes import load_spec
from tests.studies.test_studies import only, summary


@pytest.mark.data
@pytest.mark.heavy(38)  # seconds on one thread: tests/scheduling.py
def test_study_c_quick(tmp_path, data_dir):
    assert (
        main(["study", "c", "--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)])
        == 0
    )
    study = only(tmp_path)
    c1, c2, c4 = (summary(study / p / "seed0")["metrics"] for p in ("C1", "C2", "C4"))
    # measured: C1 0.316, C2 0.662 (rotated or not), C3 0.26-0.30, C4 test loss 0.95
    assert c1["test.accuracy"] >= 0.2
    assert c2["test.accuracy"] >= 0.57
    transfer = sorted((study / "C3").iterdir())
    assert [p.name for p in transfer] == [
        f"blocks_{k}-freeze_{f}-seed_0" for k in (1, 3) for f in (False, True)
    ]
    for run in transfer:
        assert summary(run)["metrics"]["test.accuracy"] >= 0.18
        pretrained = load_spec(run / "config.yaml").model.pretrained
        assert pretrained.path == str(study / "C2" / "seed0") and pretrained.blocks in (1, 3)
    # Untrained embeddings nearly coincide, so every different-class pair costs about M = 2
    # (0.9 of pairs): an untrained network scores about 1.8.
    assert c4["test.loss"] <= 1.3
    figures = [f["name"] for f in summary(study / "C4" / "seed0")["figures"]]
    assert "2-D latent space before and after training (test sample)" in figures
    md = (study / "study.md").read_text()
    for row in (
        "| C1 | test.accuracy | 0.7556 |",
        "| C2 | test.accuracy | 0.8714 |",
        "| C3 | test.accuracy k=1 trainable | — |",
        "| C4 | test.loss | 0.5145 |",
    ):
        assert row in md
    assert "cifar10-mini" in md and "fewer images than the report" in md
    html = (study / "study.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "transferring the first k blocks" in html


def test_study_c_options_are_checked(capsys):
    assert main(["study", "c", "--set", "ks=[0,4]"]) == 2
    assert "between 1 and 3" in capsys.readouterr().err
