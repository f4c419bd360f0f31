"""The small ViT: shapes on 28 and 32 px images, the token steps MAE uses, its checks."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import MODELS
from replab.models.vit import patchify, unpatchify


def _vit(shape, **params):
    return MODELS.build("vit", params, where="model.encoder", in_shape=shape)


@pytest.mark.parametrize(("shape", "grid"), [((1, 28, 28), 49), ((3, 32, 32), 64)])
def test_vit_defaults_give_a_192_wide_latent_from_4px_patches(shape, grid):
    vit = _vit(shape)
    assert vit.latent_dim == 192 and vit.num_patches == grid and len(vit.blocks) == 6
    assert vit.block_names == [f"blocks.{i}" for i in range(6)]
    x = torch.randn(2, *shape)
    assert vit(x).shape == (2, 192)
    assert vit.embed(x).shape == (2, grid, 192)


def test_vit_forward_is_the_class_token_or_the_mean_of_the_encoded_patches():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 8, 8)
    for pool in ("cls", "mean"):
        vit = _vit((1, 8, 8), width=16, depth=2, heads=2, pool=pool).eval()
        h = vit.encode(vit.embed(x))
        assert h.shape == (3, 5, 16)
        want = h[:, 0] if pool == "cls" else h[:, 1:].mean(1)
        torch.testing.assert_close(vit(x), want)


def test_vit_on_a_subset_of_tokens_matches_attention_over_that_subset_only():
    """Encoding kept tokens alone equals masking attention to them: the others never leak."""
    torch.manual_seed(0)
    vit = _vit((1, 8, 8), width=16, depth=1, heads=2).eval()
    tokens = vit.embed(torch.randn(1, 1, 8, 8))
    kept = vit.encode(tokens[:, [0, 2]])
    changed = tokens.clone()
    changed[:, [1, 3]] = 100.0
    torch.testing.assert_close(vit.encode(changed[:, [0, 2]]), kept)


def test_patchify_round_trips_and_orders_patches_row_major():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    patches = patchify(x, 4)
    assert patches.shape == (2, 4, 48)
    # patch 1 is the top-right 4x4 square; its first value is pixel (0, 4) of channel 0
    assert patches[0, 1, 0] == x[0, 0, 0, 4] and patches[0, 1, 1] == x[0, 1, 0, 4]
    torch.testing.assert_close(unpatchify(patches, 4, (3, 8, 8)), x)


def test_vit_refuses_patches_that_do_not_tile_and_heads_that_do_not_split():
    with pytest.raises(ConfigError, match="do not tile"):
        _vit((1, 28, 28), patch_size=5)
    with pytest.raises(ConfigError, match="heads"):
        _vit((1, 28, 28), width=10, heads=3)
    with pytest.raises(ConfigError, match="pool"):
        _vit((1, 28, 28), pool="max")
