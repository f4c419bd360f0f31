"""The study report: reference table with mean ± std, time per part,
sections; HTML, Markdown, JSON."""

from __future__ import annotations

import json
import re

from replab.reporting.figures import curves
from replab.reporting.study_report import Section, StudyReport, format_mean_std, write_study_report
from replab.studies.framework import reference_row
from tests.reporting.test_browser import browse


def report() -> StudyReport:
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e} for e in range(1, 5)]
    return StudyReport(
        title="Study <X>",
        question="Which is best?",
        settings={"data": "MNIST test (10,000 images)", "profile": "quick"},
        reference=[
            reference_row("A1", "probe.test_accuracy", 0.9735, [0.97, 0.98, 0.975]),
            reference_row("A2", "test.accuracy", None, [0.99]),
        ],
        timings=[("A1", "autoencoder", 12.5), ("A2", "classifier", 7.5)],
        sections=[
            Section(
                "Curves",
                ["one <b>paragraph</b>"],
                table=(["k", "loss"], [["2", "0.05"]]),
                figures={"a": curves(history), "b": curves(history)},
                columns=2,
            ),
            Section("Answer: which is best?", ["A2."]),
        ],
    )


def test_reference_row_gives_mean_std_and_gap():
    row = reference_row("A1", "acc", 0.9735, [0.97, 0.98, 0.975])
    assert abs(row["mean"] - 0.975) < 1e-12 and abs(row["std"] - 0.005) < 1e-12 and row["n"] == 3
    assert abs(row["delta"] - 0.0015) < 1e-12
    assert reference_row("A2", "acc", None, [0.9])["std"] is None
    assert (
        format_mean_std(0.001462, None) == "0.001462"
        and format_mean_std(149.0, None) == "149"
        and format_mean_std(0.975, 0.005) == "0.975 ± 0.005"
    )


def test_html_markdown_and_json(tmp_path):
    html_path, md_path = write_study_report(tmp_path, report())
    html = html_path.read_text()
    # user text is escaped
    assert "Study &lt;X&gt;" in html and "one &lt;b&gt;paragraph&lt;/b&gt;" in html
    # mean ± std, Δ, total seconds
    assert "0.975 ± 0.005" in html and "+0.0015" in html and "20.0" in html
    assert html.count("data:image/png;base64,") == 2
    md = md_path.read_text()
    assert "| A1 | probe.test_accuracy | 0.9735 | 0.975 ± 0.005 | 3 | +0.0015 |" in md
    assert "![a](figures/00-00.png)" in md and (tmp_path / "figures" / "00-01.png").is_file()
    summary = json.loads((tmp_path / "study-summary.json").read_text())
    assert summary["timings"][0] == {"part": "A1", "title": "autoencoder", "seconds": 12.5}


def test_study_report_loads_in_a_browser(tmp_path):
    html_path, _ = write_study_report(tmp_path / "study", report())
    proc = browse(html_path, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)
    ]
    assert re.search(r'data-figures="2"', proc.stdout) and re.search(
        r'data-figures-loaded="2"', proc.stdout
    )
