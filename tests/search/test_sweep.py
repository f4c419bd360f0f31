"""Sweeps: a key over values is one run per value in one study folder, with per-metric plots."""

from __future__ import annotations

import json

import pytest

from replab.cli import main
from replab.errors import ConfigError
from replab.search.sweep import parse_axis

DEFAULT = "digits-autoencoder"


def test_sweep_runs_each_value_and_plots_every_metric(tmp_path, capsys):
    args = [
        "sweep",
        DEFAULT,
        "trainer.epochs=3",
        "analysis.enabled=false",
        "probe.trainer.epochs=3",
        "--over",
        "model.encoder.latent_dim=[2,16]",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    (study,) = tmp_path.iterdir()
    record = json.loads((study / "sweep.json").read_text())
    assert [r["values"] for r in record["runs"]] == [
        {"model.encoder.latent_dim": 2},
        {"model.encoder.latent_dim": 16},
    ]
    for r in record["runs"]:
        config = (study / r["run"] / "config.yaml").read_text()
        assert (
            f"latent_dim: {r['values']['model.encoder.latent_dim']}" in config
            and "epochs: 3" in config
        )
    # a 16-d bottleneck reconstructs better than a 2-d one
    assert record["runs"][1]["metrics"]["test.mae"] < record["runs"][0]["metrics"]["test.mae"]
    assert (study / "figures" / "test.mae.png").stat().st_size > 5000
    assert (study / "figures" / "probe.test_accuracy.png").is_file()
    assert "probe.test_accuracy" in (study / "study.md").read_text()
    html = (study / "study.html").read_text()
    assert "test.mae vs model.encoder.latent_dim" in html and html.count(
        "data:image/png;base64,"
    ) == len(list((study / "figures").iterdir()))


def test_grid_of_two_axes(tmp_path):
    args = [
        "sweep",
        DEFAULT,
        "trainer.epochs=1",
        "probe.enabled=false",
        "analysis.enabled=false",
        "--over",
        "model.encoder.latent_dim=[2,4]",
        "--over",
        "seed=[0,1]",
        "--runs-dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    (study,) = tmp_path.iterdir()
    assert len(json.loads((study / "sweep.json").read_text())["runs"]) == 4


def test_every_point_is_validated_before_training(tmp_path, capsys):
    args = ["sweep", DEFAULT, "--over", "trainer.epochs=[2,-1]", "--runs-dir", str(tmp_path)]
    assert main(args) == 2
    assert "trainer.epochs" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), (
        "nothing may be trained when one point of the sweep is invalid"
    )


@pytest.mark.parametrize("text", ["model.encoder.latent_dim", "latent_dim=3", "x=[]"])
def test_axis_syntax(text):
    with pytest.raises(ConfigError, match=r"key.path=\[v1,v2"):
        parse_axis(text)


def test_one_axis_can_set_several_keys():
    from replab.recipes import read_recipe
    from replab.search.sweep import grid

    axis = parse_axis("model.encoder.dropout,model.decoder.dropout=[0.0,0.3]")
    points = grid(read_recipe(DEFAULT), [axis], [])
    assert [
        (s.model.encoder.params["dropout"], s.model.decoder.params["dropout"]) for _, s in points
    ] == [(0.0, 0.0), (0.3, 0.3)]
    assert points[1][1].name.endswith("dropout_0.3")


def test_a_finished_run_is_reused_and_a_changed_one_refused(tmp_path):
    from replab.errors import ReplabError
    from replab.recipes import load_spec
    from replab.runs.lifecycle import run_or_reuse

    spec = load_spec(DEFAULT, ["trainer.epochs=1", "probe.enabled=false", "analysis.enabled=false"])
    first = run_or_reuse(spec, tmp_path / "p", log=lambda m: None)
    logged = []
    assert run_or_reuse(spec, tmp_path / "p", log=logged.append) == first
    assert any("reusing" in line for line in logged)
    with pytest.raises(ReplabError, match="another configuration"):
        run_or_reuse(
            load_spec(
                DEFAULT, ["trainer.epochs=2", "probe.enabled=false", "analysis.enabled=false"]
            ),
            tmp_path / "p",
        )
