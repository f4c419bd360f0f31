"""Per-part optimizer settings (report 003 fine-tunes its encoder and its MLP with different rates)."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.models import Classifier
from replab.spec import OptimizerSpec
from replab.training.optim import build_optimizer


def model():
    return Classifier(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))


def test_parts_get_their_own_rate_and_decay_and_the_rest_the_defaults():
    m = model()
    spec = OptimizerSpec(lr=2e-4, weight_decay=0.17, parts={"encoder": {"lr": 0.0058, "weight_decay": 1e-5}})
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
