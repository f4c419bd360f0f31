"""The MAE task: random patch masking, the encoder blind to hidden patches (ViT on visible
tokens, other encoders on the zeroed image), the report's reconstructions, options, learning."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models.mae import keep_count, random_masking
from replab.spec import validate_spec
from replab.tasks import TASKS, build_task

VIT = {"name": "vit", "patch_size": 4, "width": 16, "depth": 1, "heads": 2}
MLP = {"name": "mlp", "hidden": [16], "latent_dim": 8}
TIMM_VIT = {
    "name": "timm",
    "model": "vit_tiny_patch16_224",
    "kwargs": {"patch_size": 4, "depth": 1, "embed_dim": 16, "num_heads": 2},
}
DECODER = {"name": "mae_decoder", "width": 16, "depth": 1, "heads": 2}


def mae_task(encoder=VIT, shape=(1, 8, 8), objective=None, **options):
    raw = {
        "task": {"name": "mae", **options},
        "objective": objective or {"name": "mae"},
        "model": {"encoder": encoder, "decoder": DECODER},
    }
    return build_task(validate_spec(raw), shape, 10)


def test_registered_label_free_and_reconstructing():
    cls = TASKS.get("mae")
    assert not cls.needs_labels and cls.reconstructs and not cls.classifies


def test_random_masking_hides_all_but_the_lowest_noise_patches():
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    ids_keep, mask = random_masking(noise, 1)
    assert ids_keep.tolist() == [[1], [0]]
    assert mask.tolist() == [[1, 0, 1, 1], [0, 1, 1, 1]]
    assert keep_count(49, 0.75) == 12 and keep_count(4, 0.99) == 1


@pytest.mark.parametrize("encoder", [VIT, MLP, TIMM_VIT])
def test_the_prediction_does_not_see_the_hidden_patches(encoder):
    """Whatever the hidden pixels are, the encoder (and so the prediction) is the same."""
    torch.manual_seed(0)
    task = mae_task(encoder, shape=(1, 8, 8), mask_ratio=0.5)
    model = task.model.eval()
    x = torch.rand(2, 1, 8, 8)
    noise = torch.rand(2, 4)
    pred, mask = model(x, noise)
    assert pred.shape == (2, 4, 16) and mask.sum().item() == 4  # 2 of 4 patches per image
    scrambled = x + 5 * model.hide(torch.ones_like(x), 1 - mask)  # changes hidden patches only
    torch.testing.assert_close(model(scrambled, noise)[0], pred)
    assert model.tokens == (encoder is not MLP)  # a timm ViT too runs on visible tokens


def test_a_vit_encoder_keeps_its_own_patches():
    assert mae_task(VIT, shape=(1, 8, 8)).model.patch_size == 4
    with pytest.raises(ConfigError, match="differs from the ViT"):
        mae_task(VIT, shape=(1, 8, 8), patch_size=2)
    assert mae_task(MLP, shape=(1, 8, 8), patch_size=2).model.num_patches == 16


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, True, "half"])
def test_mask_ratio_must_be_a_share(ratio):
    with pytest.raises(ConfigError, match="mask_ratio"):
        mae_task(mask_ratio=ratio)


def test_parts_other_than_encoder_and_decoder_are_refused():
    raw = {
        "task": "mae",
        "objective": {"name": "mae"},
        "model": {"encoder": VIT, "head": {"name": "linear_head"}},
    }
    with pytest.raises(ConfigError, match="encoder and a decoder only"):
        build_task(validate_spec(raw), (1, 8, 8), 10)


@pytest.mark.parametrize("norm_pix", [False, True])
def test_the_reports_reconstruction_keeps_the_visible_patches_and_one_fixed_mask(norm_pix):
    torch.manual_seed(0)
    task = mae_task(VIT, objective={"name": "mae", "norm_pix": norm_pix})
    model = task.model.eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        image, again = model(x), model(x)
        masked = model.masked_input(x)
    assert image.shape == x.shape
    torch.testing.assert_close(image, again)  # the report's mask is one seeded draw
    visible = masked != 0
    torch.testing.assert_close(image[visible], x[visible])
    assert 0.6 < (masked == 0).float().mean() < 0.9  # 3 of 4 patches hidden


def test_the_task_learns_to_fill_in_patches():
    """A few steps on structured images lower the masked-patch loss (it can fail)."""
    torch.manual_seed(0)
    task = mae_task(VIT, shape=(1, 8, 8))
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, :, :4] = 1.0  # left half bright: the hidden patches follow from their columns
    optimizer = torch.optim.Adam(task.model.parameters(), lr=3e-3)
    task.train_mode()
    first = task.step(x, torch.zeros(64))["loss"].item()
    for _ in range(60):
        loss = task.step(x, torch.zeros(64))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * first
