"""Study ssl, the study added as one file (replab/studies/study_ssl.py; docs/adding.md):
SimCLR, Barlow Twins and VICReg on one protocol, quick profile on MNIST, with floors."""

from __future__ import annotations

import pytest

from replab.cli import main
from tests.studies.test_studies import metrics, only


@pytest.mark.data
@pytest.mark.heavy(27)  # seconds on one thread: tests/scheduling.py
def test_study_ssl_quick_on_mnist(tmp_path, data_dir, capsys):
    assert (
        main(["study", "ssl", "--quick", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path)])
        == 0
    )
    study = only(tmp_path)
    simclr, barlow, vicreg = (metrics(study, p) for p in ("S1", "S2", "S3"))
    # measured on the quick profile (seed 0, 2026-12-01): SimCLR probe 0.919, Barlow Twins
    # 0.909, VICReg 0.905
    assert simclr["probe.test_accuracy"] >= 0.75
    assert barlow["probe.test_accuracy"] >= 0.75
    assert vicreg["probe.test_accuracy"] >= 0.75
    md = (study / "study.md").read_text()
    assert "SimCLR vs Barlow Twins vs VICReg" in md and "| S3 |" in md
    assert "barlow_twins" in (study / "S2" / "seed0" / "config.yaml").read_text()
    assert "nt_xent" in (study / "S1" / "seed0" / "config.yaml").read_text()
    assert "vicreg" in (study / "S3" / "seed0" / "config.yaml").read_text()
    assert "Answer" in (study / "study.html").read_text()


def test_study_ssl_is_listed_by_the_registry_in_study_help(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    out = capsys.readouterr().out
    assert "ssl  SimCLR vs Barlow Twins" in out and "ssl takes dataset, lambd" in " ".join(
        out.split()
    )
