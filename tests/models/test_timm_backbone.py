"""timm encoders by name: tiny ResNet, ConvNeXt and ViT variants on CPU, adapted to the data's
channels and size, the pooled vector as the latent; pretrained weights only from this machine."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import MODELS

pytest.importorskip("timm")


def _build(shape, **params):
    return MODELS.build("timm", params, where="model.encoder", in_shape=shape)


@pytest.mark.parametrize(
    ("model", "kwargs", "shape", "width"),
    [
        ("resnet18", {}, (1, 28, 28), 512),
        ("convnext_atto", {}, (3, 32, 32), 320),
        ("vit_tiny_patch16_224", {"patch_size": 4, "depth": 2}, (1, 28, 28), 192),
    ],
)
def test_a_timm_model_gives_its_pooled_features_for_the_datas_images(model, kwargs, shape, width):
    torch.manual_seed(0)
    encoder = _build(shape, model=model, kwargs=kwargs)
    assert encoder.latent_dim == width
    x = torch.randn(3, *shape)
    z = encoder(x)
    assert z.shape == (3, width) and torch.isfinite(z).all()
    z.sum().backward()  # trainable end to end
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)
    first = next(m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == shape[0]  # in_chans follows the data


def test_a_vit_takes_the_datas_image_size_and_kwargs():
    encoder = _build((3, 32, 32), model="vit_tiny_patch16_224", kwargs={"patch_size": 4})
    assert encoder.net.patch_embed.grid_size == (8, 8)  # img_size 32 / patch 4, not 224 / 16
    assert len(encoder.net.blocks) == 12


def test_a_convnet_that_shrinks_28px_images_to_nothing_is_refused_when_built():
    with pytest.raises(ConfigError, match="cannot take images of shape"):
        _build((1, 28, 28), model="convnext_atto")


def test_unknown_model_and_orphan_weights_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="timm has no model 'no_such_net'"):
        _build((1, 28, 28), model="no_such_net")
    with pytest.raises(ConfigError, match="pretrained is false"):
        _build((1, 28, 28), model="resnet18", weights=str(tmp_path / "w.pth"))


def test_pretrained_without_local_weights_says_what_to_do(tmp_path, monkeypatch):
    """No network: an empty hub cache and torch hub folder are a ConfigError naming the fix."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError) as err:
        _build((3, 32, 32), model="resnet18", pretrained=True)
    assert "no pretrained weights" in err.value.problem
    assert "model.encoder.weights" in err.value.fix
    with pytest.raises(ConfigError, match="no file"):
        _build((3, 32, 32), model="resnet18", pretrained=True, weights=str(tmp_path / "x.pth"))


def test_pretrained_weights_load_from_a_local_file_and_adapt_the_channels(tmp_path):
    """A checkpoint with a classifier and RGB stem loads into a 1-channel, headless encoder."""
    import timm

    torch.manual_seed(1)
    source = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    encoder = _build((1, 28, 28), model="resnet18", pretrained=True, weights=str(path))
    torch.testing.assert_close(encoder.net.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    # timm sums the RGB filters into one grey channel
    torch.testing.assert_close(
        encoder.net.conv1.weight, source.conv1.weight.sum(1, keepdim=True), rtol=1e-5, atol=1e-6
    )


def test_pretrained_weights_are_found_in_the_local_hub_cache(tmp_path, monkeypatch):
    """What timm downloaded once is read from the hub cache, with no network call."""
    import timm
    from safetensors.torch import save_file

    cfg = timm.models.get_pretrained_cfg("resnet18")
    folder = tmp_path / "hub" / f"models--{cfg.hf_hub_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("abc")
    torch.manual_seed(2)
    source = timm.create_model("resnet18", num_classes=1000)
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, snapshot / "model.safetensors"
    )
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = _build((3, 32, 32), model="resnet18", pretrained=True)
    torch.testing.assert_close(encoder.net.conv1.weight, source.conv1.weight)


@pytest.mark.parametrize("kwargs", [{}, {"global_pool": "avg"}, {"no_embed_class": True}])
def test_a_timm_vits_token_steps_compute_its_own_forward(kwargs):
    """MAE runs a timm ViT's blocks on the visible tokens through embed/encode/pool: on all
    tokens those give exactly timm's forward."""
    torch.manual_seed(0)
    params = {"patch_size": 4, "depth": 2, **kwargs}
    encoder = _build((1, 8, 8), model="vit_tiny_patch16_224", kwargs=params).eval()
    assert encoder.token_steps and encoder.patch_size == 4 and encoder.width == 192
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(encoder.pool(encoder.encode(encoder.embed(x))), encoder(x))
    assert not _build((1, 8, 8), model="resnet18").token_steps
