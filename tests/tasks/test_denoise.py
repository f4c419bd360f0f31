"""The denoising autoencoder task: corruption, loss against the clean image, options, and that
it learns a latent on digits through an ordinary recipe."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from replab.cli import main
from replab.errors import ConfigError
from replab.spec import validate_spec
from replab.tasks import TASKS, build_task
from replab.tasks.base import EVAL_SEED

MLP = {"name": "mlp", "hidden": [16], "latent_dim": 8}


def denoise_task(**options):
    raw = {
        "task": {"name": "denoise", **options},
        "objective": {"name": "mse"},
        "model": {"encoder": MLP, "decoder": {"name": "mlp_decoder", "hidden": [16]}},
    }
    return build_task(validate_spec(raw), (1, 8, 8), 10)


def test_registered_label_free_and_reconstructing():
    cls = TASKS.get("denoise")
    assert not cls.needs_labels and cls.reconstructs and not cls.classifies


def test_masking_zeroes_that_share_of_pixels_and_leaves_the_rest_exact():
    task = denoise_task(noise=0.0, mask=0.25)
    x = torch.rand(200, 1, 8, 8) + 0.5  # no pixel is zero before masking
    torch.manual_seed(0)
    out = task.corrupt(x)
    zeroed = out == 0
    assert zeroed.float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(out[~zeroed], x[~zeroed])


def test_gaussian_noise_has_the_asked_standard_deviation_in_normalised_units():
    task = denoise_task(noise=0.7)
    x = torch.rand(400, 1, 8, 8, dtype=torch.float64)
    torch.manual_seed(0)
    diff = task.corrupt(x) - x
    assert diff.mean().item() == pytest.approx(0.0, abs=0.01)
    assert diff.std().item() == pytest.approx(0.7, rel=0.02)


def test_the_loss_compares_the_reconstruction_of_the_corrupted_image_with_the_clean_one():
    task = denoise_task(noise=0.5, mask=0.1)
    x = torch.rand(64, 1, 8, 8)
    identity = nn.Identity()
    task.model.eval()  # one seeded corruption stream: the reference can replay it
    loss = task.compute(identity, x, torch.zeros(64, dtype=torch.long), None)["loss"]
    g = torch.Generator().manual_seed(EVAL_SEED)
    noisy = x + 0.5 * torch.randn(x.shape, generator=g)
    keep = torch.rand(x.shape, generator=g) >= 0.1
    expected = ((noisy * keep - x) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() > 0.05  # the plain autoencoder's identity would score 0 here


def test_evaluation_replays_one_corruption_training_draws_afresh():
    task = denoise_task(noise=0.3)
    x = torch.rand(16, 1, 8, 8)
    task.model.eval()
    first = task.corrupt(x)
    task.model.train()
    a, b = task.corrupt(x), task.corrupt(x)
    task.model.eval()
    assert torch.equal(first, task.corrupt(x))
    assert not torch.equal(a, b)


@pytest.mark.parametrize(
    "options",
    [{"noise": -0.1}, {"mask": 1.0}, {"noise": "high"}, {"noise": True}, {"noise": 0, "mask": 0}],
)
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError, match="task"):
        denoise_task(**options)


def test_a_recipe_naming_it_trains_a_latent_a_probe_can_read(tmp_path, capsys):
    code = main(
        [
            "run",
            "digits-autoencoder",
            "task={name: denoise, noise: 0.3, mask: 0.1}",
            "trainer.epochs=40",
            "analysis.enabled=false",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    (summary,) = tmp_path.glob("*/summary.json")
    metrics = json.loads(summary.read_text())["metrics"]
    # measured 0.975 on 2026-12-06 (40 epochs); the floor leaves a wide margin
    assert metrics["probe.test_accuracy"] > 0.85
    assert metrics["test.mse"] < 0.1
