"""Reports: rebuilt from saved runs, compared side by side, user strings escaped."""

from __future__ import annotations

import json
import re

import pytest

from replab.cli import main
from replab.reporting.html import metric_rows

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "run",
                "trainer.epochs=2",
                "probe.trainer.epochs=2",
                f"name={EVIL}",
                "--runs-dir",
                str(root),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "run",
                "trainer.epochs=3",
                "probe.enabled=false",
                "analysis.enabled=false",
                "seed=1",
                "--runs-dir",
                str(root),
            ]
        )
        == 0
    )
    evil = next(root.glob("script*"))
    return [evil, next(p for p in root.iterdir() if p != evil)]


def test_user_strings_are_escaped(runs):
    html = (runs[0] / "report.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert runs[0].name.startswith("script_alert_1_script")  # folder name made safe


def test_the_interactive_latent_map_has_a_colour_legend(runs):
    """Each class's name beside the colour its points are drawn in (issue 34, point 7)."""
    page = (runs[0] / "report.html").read_text()
    legend = re.search(r'<ul id="latent-legend".*?</ul>', page, re.S)
    assert legend is not None
    entries = re.findall(r"background: (#[0-9a-f]{6});\"></span>([^<]+)</li>", legend[0])
    data = json.loads(re.search(r'<script id="latent-data"[^>]*>(.*?)</script>', page, re.S)[1])
    assert [name for _, name in entries] == data["classes"] == [str(i) for i in range(10)]
    # the colour the script draws class i in is the legend's i-th
    assert [color for color, _ in entries] == [data["colors"][i % 10] for i in range(10)]
    assert "colors[p[2] % colors.length]" in page


def test_report_rebuilds_identically_without_training(runs):
    before = (runs[0] / "report.html").read_text()
    (runs[0] / "report.html").unlink()
    (runs[0] / "last.pt").unlink()  # no model needed
    assert main(["report", str(runs[0])]) == 0
    assert (runs[0] / "report.html").read_text() == before


def test_compare_writes_markdown_and_html(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, runs), "--out", str(out)]) == 0
    md = (tmp_path / "cmp.md").read_text()
    html = (tmp_path / "cmp.html").read_text()
    assert md.count("\n") == 4  # header, rule, two runs
    assert "probe.test_accuracy" in md and "test.mae" in md
    assert EVIL not in html and "&lt;script&gt;" in html
    # the study view: the run with an analysis contributes its t-SNE pair
    assert html.count("data:image/png;base64,") == 1 and "Latent maps" in html


def test_report_of_unfinished_run_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("model: {encoder: {name: mlp}}\nobjective: {name: l1}\n")
    assert main(["report", str(tmp_path)]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_metric_rows_put_reference_beside_measured():
    rows = metric_rows({"acc": 0.98, "mae": 0.03}, {"acc": 0.9735})
    assert rows[0] == {"name": "acc", "value": "0.98", "reference": "0.9735", "delta": "+0.0065"}
    assert rows[1]["reference"] == "" and rows[1]["delta"] == ""
