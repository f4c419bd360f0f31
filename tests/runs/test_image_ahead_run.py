"""A run whose image space a helper computed during training reports exactly what a run that
computed it after training reports (issue 19), and lends the helper a CPU meanwhile."""

from __future__ import annotations

import json

import pytest
import torch

from replab.cli import main
from replab.evaluation import image_ahead
from replab.training import threads

RUN = [
    "run",
    "digits-autoencoder",
    "trainer.epochs=3",
    "trainer.early_stopping=null",
    "probe.trainer.epochs=10",
    "analysis.tsne_iterations=[50,100]",
]


def summary(runs_dir):
    (run,) = list(runs_dir.iterdir())
    return json.loads((run / "summary.json").read_text())


@pytest.mark.heavy(12)  # seconds on one thread: tests/scheduling.py
def test_a_run_with_the_helper_reports_what_a_run_without_it_does(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(image_ahead, "MIN_TRAINING_LEFT_S", 0.0)  # the digits train in seconds
    # two CPUs for the run, one of which it lends (a test worker may have been given one)
    monkeypatch.setattr(threads, "_fixed", None)
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda *_: 2)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache-with"))
        assert main([*RUN, "--runs-dir", str(tmp_path / "with")]) == 0
        out = capsys.readouterr().out
        monkeypatch.setenv("REPLAB_CACHE", str(tmp_path / "cache-without"))
        off = [*RUN, "analysis.image_space_ahead=false", "--runs-dir", str(tmp_path / "no")]
        assert main(off) == 0
    except SystemExit as exit_:  # main returns 0; a failure exits with the message printed
        raise AssertionError(capsys.readouterr()) from exit_
    finally:
        torch.set_num_threads(before)
    assert "image space: computed during training by a helper (" in out
    assert "t-SNE image space (cached)" in out
    assert "the image space's helper" in out.split("wall time:")[1]
    helped, alone = summary(tmp_path / "with"), summary(tmp_path / "no")
    # the image space's four scores (the pixels' label curves are the run's own, not the
    # helper's: they are compared with the rest below)
    image = {
        k: v
        for k, v in alone["metrics"].items()
        if k.startswith("image.") and not k.startswith("image.shots.")
    }
    assert len(image) == 4 and image == {k: helped["metrics"][k] for k in image}
    assert helped["metrics"] == alone["metrics"]  # the latent space and the probe too
    assert 1 in helped["threads"]["changes"]  # training lent the helper one of its two
    assert alone["threads"]["changes"] == []
    assert helped["timings"]["image_space_helper"] > 0
    assert "image_space_helper" not in alone["timings"]
