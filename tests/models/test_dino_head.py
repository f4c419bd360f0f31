"""DINO's head: MLP to a bottleneck, l2-normalised, weight-normalised prototypes of fixed
length unless norm_last_layer is false."""

from __future__ import annotations

import torch

from replab.models import MODELS


def _head(**params):
    return MODELS.build(
        "dino_head",
        {"hidden": 16, "bottleneck": 8, "out_dim": 32, **params},
        where="model.projection",
        in_dim=12,
    )


def test_scores_are_cosines_to_unit_prototypes():
    torch.manual_seed(0)
    head = _head()
    h = torch.randn(5, 12)
    out = head(h)
    assert out.shape == (5, 32) and head.out_dim == 32
    assert out.abs().max() <= 1 + 1e-5  # unit bottleneck times unit prototypes
    w = head.last.weight
    torch.testing.assert_close(w.norm(dim=1), torch.ones(32))
    g = head.last.parametrizations.weight.original0
    assert not g.requires_grad
    assert _head(norm_last_layer=False).last.parametrizations.weight.original0.requires_grad


def test_layers_sets_the_mlp_depth():
    linears = [m for m in _head(layers=2).mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 16), (16, 8)]
