"""The Python API (``import replab``): runs, loading a run the CLI wrote, embeddings, results.

The digits recipe is shrunk so each run takes a few seconds.
"""

from __future__ import annotations

import json

import pytest
import torch

import replab
from replab.cli import main
from replab.errors import ReplabError

FAST = [
    "trainer.epochs=3",
    "model.encoder.hidden=[32]",
    "model.decoder.hidden=[32]",
    "model.encoder.latent_dim=6",
    "probe.trainer.epochs=5",
    "analysis.enabled=false",
]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["run", "digits-autoencoder", *FAST, "--runs-dir", str(runs)]) == 0
    (folder,) = runs.iterdir()
    return folder


def test_load_of_a_cli_run_reproduces_its_test_metrics_from_the_checkpoint(cli_run):
    run = replab.load(cli_run)
    recorded = run.metrics
    again = run.evaluate("test")
    for key in ("test.loss", "test.mae"):
        assert again[key] == pytest.approx(recorded[key], rel=1e-5), key
    assert len(run.history) == 3 and run.history[-1]["epoch"] == 3
    assert run.report.is_file() and run.spec.name == "digits-autoencoder"
    assert not run.encoder.training and not run.model.training


def test_embed_takes_a_split_or_images_in_either_pixel_form(cli_run):
    run = replab.load(cli_run)
    z = run.embed("test")
    splits, _ = run.data
    assert z.shape == (len(splits.test), 6)
    pixels = splits.test.images[:10]
    torch.testing.assert_close(run.embed(pixels), z[:10])
    torch.testing.assert_close(run.embed(pixels.float() / 255), z[:10])
    with pytest.raises(ReplabError, match="unknown dataset 'holdout'"):
        run.embed("holdout")
    with pytest.raises(ReplabError, match="N x C x H x W"):
        run.embed(torch.zeros(8, 8))


@pytest.mark.data
def test_embed_takes_another_dataset_at_the_runs_image_shape(cli_run, data_dir, monkeypatch):
    """A digits (8x8) encoder embeds MNIST's test images, resized to 8x8 on loading."""
    monkeypatch.setenv("REPLAB_DATA", str(data_dir))
    z = replab.load(cli_run).embed("mnist")
    assert z.shape == (10_000, 6) and torch.isfinite(z).all()


@pytest.mark.data
def test_a_loaded_run_reads_its_data_where_it_found_it(data_dir, tmp_path, monkeypatch):
    """Trained with $REPLAB_DATA set, embedded later without it: the run's recorded folder is
    read, not the (empty) cache, and nothing is downloaded (issue 34, point 7)."""
    monkeypatch.setenv("REPLAB_DATA", str(data_dir))
    small = ["data.limit_train=300", "data.limit_eval=200", "data.download=false"]
    run = replab.run(
        "a1-mnist-autoencoder",
        *small,
        "trainer.epochs=1",
        "probe.enabled=false",
        "analysis.enabled=false",
        runs_dir=tmp_path,
    )
    assert run is not None
    monkeypatch.delenv("REPLAB_DATA")
    z = replab.load(run.dir).embed("train")
    assert z.shape[0] == 300 and torch.isfinite(z).all()


def test_show_is_a_light_card_and_the_full_report_on_request(cli_run, monkeypatch):
    """run.show(): metrics and a link to report.html, the figures read from the run folder,
    a few KB in a saved notebook; full=True the whole report inline (issue 34, point 3)."""
    pytest.importorskip("IPython")
    monkeypatch.chdir(cli_run.parent)  # the notebook's folder: Jupyter serves what is below it
    run = replab.load(cli_run)
    card = run.show()._repr_html_()
    assert "<iframe" not in card and "data:image" not in card and len(card) < 5_000
    assert f'<a href="{cli_run.name}/report.html"' in card and "test.mae" in card
    assert f'<img src="{cli_run.name}/figures/' in card and "show(full=True)" in card
    full = run.show(full=True)._repr_html_()
    assert full.startswith("<iframe srcdoc=") and "test.mae" in full and len(full) > 20 * len(card)


def test_run_returns_the_finished_run_and_load_refuses_what_is_not_one(tmp_path):
    run = replab.run("digits-autoencoder", *FAST, "probe.enabled=false", runs_dir=tmp_path)
    assert run.summary["state"] == "finished" and "test.mae" in run.metrics
    assert "probe.test_accuracy" not in run.metrics
    with pytest.raises(ReplabError, match="not a replab run folder"):
        replab.load(tmp_path)
    with pytest.raises(ReplabError, match="exactly as it was configured"):
        replab.run("digits-autoencoder", resume=run.dir)


def test_sweep_returns_its_table(tmp_path):
    result = replab.sweep(
        "digits-autoencoder",
        ["model.encoder.latent_dim=[2,4]"],
        # a fixed value of the swept key is refused now (the sweep silently dropped it)
        *(o for o in FAST if not o.startswith("model.encoder.latent_dim=")),
        "probe.enabled=false",
        runs_dir=tmp_path,
    )
    rows = result.table
    assert [r["values"]["model.encoder.latent_dim"] for r in rows] == [2, 4]
    assert result.html.is_file()
    assert json.loads((result.dir / "sweep.json").read_text())["runs"] == rows


def test_unknown_api_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'train'"):
        replab.train  # noqa: B018
