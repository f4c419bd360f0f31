"""The VAE (E5) and triplet (F2) tasks: steps, latents, and tiny real training runs."""

from __future__ import annotations

import pytest
import torch

from replab.data import DeviceLoader
from replab.errors import ConfigError
from replab.evaluation import Latents, embed, train_probe
from replab.evaluation.analysis import analyse
from replab.evaluation.latent import decode, sample_prior
from replab.models.gaussian import GaussianEncoder
from replab.objectives.triplet import mine_triplets
from replab.recipes import load_spec
from replab.runs.prepare import initial_task, load_data, loaders
from replab.spec import AnalysisSpec, Component, validate_spec
from replab.tasks import build_task
from replab.tasks.base import EVAL_SEED
from replab.training import Trainer

E1_CONV = {
    "name": "conv",
    "channels": [8, 16, 32],
    "kernels": [4, 4, 3],
    "paddings": [1, 1, 0],
    "hidden": [64],
    "latent_dim": 44,
}


def vae_task(encoder=E1_CONV, decoder=None, shape=(1, 28, 28), **objective):
    raw = {
        "task": "vae",
        "objective": {"name": "elbo", **objective},
        "model": {"encoder": encoder, "decoder": decoder or {"name": "conv_decoder"}},
    }
    return build_task(validate_spec(raw), shape, 10)


def test_vae_splits_a_2d_output_into_mean_and_log_variance():
    task = vae_task()
    enc = task.encoder
    assert isinstance(enc, GaussianEncoder) and enc.split and enc.latent_dim == 44
    assert (
        enc.base.project[-1].out_features == 88 and task.model.decoder.expand[0].in_features == 44
    )
    x = torch.rand(6, 1, 28, 28)
    mu, logvar = enc.distribution(x)
    h = enc.base(x)
    assert torch.equal(mu, h[:, :44]) and torch.equal(logvar, h[:, 44:])
    task.model.eval()
    assert torch.equal(enc(x), mu)  # the latent probes and analysis read is the mean
    assert task.model(x).shape == x.shape


def test_vae_step_is_the_elbo_of_a_reparameterised_sample():
    task = vae_task(kl_weight=2.0)
    task.model.eval()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        got = task.step(x, torch.zeros(8))
        task.model.train()
        task.step(x, torch.zeros(8))  # a training step between two evaluation passes
        task.model.eval()
        again = task.step(x, torch.zeros(8))
        mu, logvar = task.encoder.distribution(x)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(EVAL_SEED))
        want = task.objective(task.model.decoder(mu + (0.5 * logvar).exp() * eps), x, mu, logvar)
    assert set(got) == {"loss", "reconstruction", "kl"}
    for key in got:
        assert got[key].item() == pytest.approx(want[key].item(), rel=1e-5)
        assert torch.equal(got[key], again[key])  # each evaluation pass replays one seeded stream
    assert got["loss"].item() == pytest.approx(
        got["reconstruction"].item() + 2.0 * got["kl"].item(), rel=1e-6
    )
    task.model.train()
    torch.manual_seed(0)
    # training samples afresh
    assert task.step(x, torch.zeros(8))["loss"].item() != pytest.approx(
        got["loss"].item(), rel=1e-9
    )


def test_vae_wraps_an_encoder_without_latent_dim_with_two_linear_heads():
    task = vae_task(
        encoder={"name": "resnet18", "width": 4},
        decoder={"name": "mlp_decoder", "hidden": [16]},
        shape=(3, 8, 8),
    )
    enc = task.encoder
    assert not enc.split and enc.latent_dim == 32 and enc.mu.in_features == 32
    assert enc(torch.rand(2, 3, 8, 8)).shape == (2, 32)


def test_vae_needs_a_decoder_and_the_elbo():
    raw = {"task": "vae", "objective": {"name": "elbo"}, "model": {"encoder": E1_CONV}}
    with pytest.raises(ConfigError, match="needs model.decoder"):
        build_task(validate_spec(raw), (1, 28, 28), 10)
    raw = {
        "task": "vae",
        "objective": {"name": "mse"},
        "model": {"encoder": E1_CONV, "decoder": {"name": "conv_decoder"}},
    }
    with pytest.raises(ConfigError, match="use one of: elbo"):
        build_task(validate_spec(raw), (1, 28, 28), 10)


def triplet_task(mining="random", **objective):
    raw = {
        "task": {"name": "triplet", "mining": mining},
        "objective": {"name": "triplet", **objective},
        "model": {"encoder": {"name": "mlp", "hidden": [16], "latent_dim": 4}},
    }
    return build_task(validate_spec(raw), (1, 8, 8), 10)


@pytest.mark.parametrize("mining", ["random", "batch_hard"])
def test_triplet_step_is_the_loss_on_mined_triplets(mining):
    task = triplet_task(mining)
    task.model.eval()
    # class 5: no positive
    x, y = torch.rand(30, 1, 8, 8), torch.tensor([5] + [i % 3 for i in range(29)])
    with torch.no_grad():
        got = task.step(x, y)
        z = task.model(x)
    a, p, n = mine_triplets(z, y, mining, torch.Generator().manual_seed(EVAL_SEED))
    assert got["loss"].item() == pytest.approx(task.objective(z[a], z[p], z[n]).item(), rel=1e-6)
    d_ap, d_an = (z[a] - z[p]).norm(dim=1), (z[a] - z[n]).norm(dim=1)
    assert got["triplet_accuracy"].item() == pytest.approx(
        (d_ap < d_an).float().mean().item(), abs=1e-6
    )
    assert got["anchor_share"].item() == pytest.approx(29 / 30)


def test_triplet_settings_are_checked():
    with pytest.raises(ConfigError, match="not a triplet mining"):
        triplet_task("semi_hard")
    raw = {
        "task": "triplet",
        "objective": {"name": "triplet"},
        "model": {"encoder": {"name": "mlp"}, "head": {"name": "linear_head"}},
    }
    with pytest.raises(ConfigError, match="takes no model.head"):
        build_task(validate_spec(raw), (1, 8, 8), 10)


def tiny_fit(spec):
    """Train ``spec`` on the CPU; train-set (eval mode) and validation figures before and
    after training, and the trained task."""
    splits, normalizer = load_data(spec)
    task = initial_task(spec, splits.train.shape, len(splits.train.classes))
    device = torch.device("cpu")
    train, val, _ = loaders(
        spec, splits, normalizer, device, spec.trainer.batch_size, spec.trainer.eval_batch_size
    )
    whole_train = DeviceLoader(
        splits.train.images,
        splits.train.labels,
        spec.trainer.eval_batch_size,
        shuffle=False,
        seed=0,
        normalizer=normalizer,
        device=device,
    )
    trainer = Trainer(task, spec.trainer, train, val, device)
    scores = lambda: {**trainer.evaluate(whole_train, "train"), **trainer.evaluate(val, "val")}  # noqa: E731
    before = scores()
    trainer.fit()
    return before, scores(), task, splits, normalizer


def test_vae_trains_on_digits_and_its_samples_come_from_the_prior():
    spec = validate_spec(
        {
            "task": "vae",
            "data": {"dataset": "digits"},
            "objective": {"name": "elbo", "reconstruction": "bce"},
            "model": {
                "encoder": {"name": "mlp", "hidden": [64], "latent_dim": 8},
                "decoder": {"name": "mlp_decoder", "hidden": [64]},
            },
            "trainer": {
                "epochs": 15,
                "batch_size": 64,
                "optimizer": {"lr": 0.003},
                "progress": False,
            },
        }
    )
    before, after, task, splits, normalizer = tiny_fit(spec)
    # Measured: val ELBO 44.7 -> 25.2 nats per 8x8 image
    # (reconstruction 44.6 -> 23.4, KL 0.1 -> 1.8).
    assert (
        after["val_loss"] < 0.7 * before["val_loss"]
        and after["train_loss"] < 0.7 * before["train_loss"]
    )
    assert (
        after["val_reconstruction"] < 0.6 * before["val_reconstruction"] and after["val_kl"] > 0.5
    )
    test = splits.test
    z = embed(task.encoder, test.images, normalizer, torch.device("cpu"))
    analysis_spec = AnalysisSpec(tsne=False, image_space=False, n_samples=8)
    result = analyse(test, z, analysis_spec, task.model.decoder, normalizer, seed=3, prior=True)
    assert result.samples_from_prior and torch.equal(
        result.samples, decode(task.model.decoder, sample_prior(8, 8, 3), normalizer)
    )
    fitted = analyse(test, z, analysis_spec, task.model.decoder, normalizer, seed=3)
    assert not fitted.samples_from_prior and not torch.equal(fitted.samples, result.samples)


def test_triplet_encoder_trains_on_cifar10_mini_and_both_probes_run(data_dir):
    spec = load_spec(
        "f2-cifar10-triplet",
        [
            f"data.root={data_dir}",
            "data.limit_train=400",
            "model.encoder.width=0.125",
            "model.encoder.pool=1",
            "trainer.epochs=8",
            "trainer.batch_size=100",
            "trainer.eval_batch_size=600",
            "trainer.optimizer.lr=0.001",
            "trainer.progress=false",
        ],
    )
    assert spec.task.params == {"mining": "random"} and spec.trainer.batch_size == 100
    before, after, task, splits, normalizer = tiny_fit(spec)
    # Measured (400 images, 8 epochs): train triplet loss 0.974 -> 0.723, val 0.979 -> 0.909,
    # val triplet accuracy 0.52 -> 0.61.
    assert (
        after["train_loss"] < 0.85 * before["train_loss"] and after["val_loss"] < before["val_loss"]
    )
    assert after["val_triplet_accuracy"] > before["val_triplet_accuracy"] + 0.03
    cpu = torch.device("cpu")
    z = {
        name: embed(task.encoder, getattr(splits, name).images, normalizer, cpu, 512)
        for name in ("train", "val", "test")
    }
    latents = Latents(
        z["train"], z["val"], z["test"], splits.train.labels, splits.val.labels, splits.test.labels
    )
    probe_trainer = spec.probe.trainer.model_copy(update={"epochs": 5, "batch_size": 128})
    # F3: fine_tune_linear, fine_tune_nn
    for head in (Component(name="linear_head"), Component(name="mlp_head", hidden=[512])):
        result = train_probe(latents, head, probe_trainer, 10, cpu, 0)
        assert 0.0 <= result.test_accuracy <= 1.0 and result.epochs >= 1


@pytest.mark.parametrize(
    ("recipe", "shape", "parameters"),
    [
        ("e1-fashion-autoencoder", (1, 28, 28), None),
        ("e5-fashion-vae", (1, 28, 28), None),
        ("f2-cifar10-triplet", (3, 32, 32), 16_328_832),  # report 004's torch summary
    ],
)
def test_new_recipes_build_their_models(recipe, shape, parameters):
    spec = load_spec(recipe)
    task = build_task(spec, shape, 10)
    x = torch.rand(2, *shape)
    task.model.eval()
    with torch.no_grad():
        if task.reconstructs:
            assert task.model(x).shape == x.shape and task.encoder.latent_dim == 44
        else:
            assert task.encoder(x).shape == (2, 64)
    if parameters:
        assert sum(p.numel() for p in task.model.parameters()) == parameters
    assert task.has_prior == (spec.task.name == "vae")
