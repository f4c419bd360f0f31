"""Per-part optimizer settings (report 003 fine-tunes its encoder and
its MLP with different rates)."""

from __future__ import annotations

import copy

import pytest
import torch

from replab.errors import ConfigError
from replab.models import Classifier
from replab.spec import OptimizerSpec
from replab.training.optimizers import build_optimizer


def model():
    return Classifier(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))


def test_parts_get_their_own_rate_and_decay_and_the_rest_the_defaults():
    m = model()
    spec = OptimizerSpec(
        lr=2e-4, weight_decay=0.17, parts={"encoder": {"lr": 0.0058, "weight_decay": 1e-5}}
    )
    opt = build_optimizer(m, spec, torch.device("cpu"))
    rest, encoder = opt.param_groups
    assert {id(p) for p in encoder["params"]} == {id(p) for p in m.encoder.parameters()}
    assert (encoder["lr"], encoder["weight_decay"]) == (0.0058, 1e-5)
    assert (rest["lr"], rest["weight_decay"]) == (2e-4, 0.17)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(m.parameters()))


def test_frozen_parameters_are_left_out_and_unknown_parts_are_clear_errors():
    m = model()
    m.encoder.requires_grad_(False)
    opt = build_optimizer(m, OptimizerSpec(), torch.device("cpu"))
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 2
    with pytest.raises(ConfigError, match="no part 'decoder'"):
        build_optimizer(m, OptimizerSpec(parts={"decoder": {"lr": 0.1}}), torch.device("cpu"))


@pytest.mark.parametrize(
    "settings",
    [
        dict(name="adam", lr=1e-2, weight_decay=1e-3),
        dict(name="adamw", lr=1e-2, weight_decay=0.05),
        dict(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    ],
)
def test_the_fused_optimizer_replab_builds_follows_torchs_reference_implementation(settings):
    """replab builds fused optimizers on CPU for speed; they must take the steps torch's default
    (per-tensor loop) implementation takes, group settings included."""
    spec = OptimizerSpec(**settings, parts={"encoder": {"lr": settings["lr"] / 3}})
    fused_model, plain_model = model(), model()
    plain_model.load_state_dict(fused_model.state_dict())
    start = copy.deepcopy(fused_model.state_dict())
    fused = build_optimizer(fused_model, spec, torch.device("cpu"))
    assert all(g["fused"] for g in fused.param_groups)
    names, twins = (
        {id(p): n for n, p in fused_model.named_parameters()},
        dict(plain_model.named_parameters()),
    )
    groups = [
        {
            **{k: v for k, v in g.items() if k not in ("params", "fused")},
            "params": [twins[names[id(p)]] for p in g["params"]],
        }
        for g in fused.param_groups
    ]
    plain = type(fused)(groups, foreach=False)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        for m, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for name, p in fused_model.named_parameters():
        torch.testing.assert_close(p, twins[name], rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(p, start[name]), f"{name} did not move"
