"""Optimizer construction from the spec."""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.spec import OptimizerSpec

FUSED_DEVICES = ("cuda", "cpu")


def build_optimizer(model: nn.Module, spec: OptimizerSpec, device: torch.device) -> torch.optim.Optimizer:
    params = param_groups(model, spec)
    # Fused kernels are a measured win on both CUDA and CPU (torch 2.14, 2-core AVX2: Adam's step
    # 6x faster than the default per-tensor loop, which foreach makes slower still; SGD 1.7x).
    extra = {"fused": True} if device.type in FUSED_DEVICES else {}
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, **extra)
    if spec.name == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, **extra)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                           nesterov=spec.nesterov and spec.momentum > 0, **extra)


def param_groups(model: nn.Module, spec: OptimizerSpec) -> list[dict]:
    """One group per part named in ``spec.parts`` (with its own lr / weight decay), one for the rest."""
    groups, claimed = [], set()
    for name, part in spec.parts.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ConfigError(f"trainer.optimizer.parts: this model has no part {name!r}",
                              f"use one of: {', '.join(n for n, _ in model.named_children())}") from None
        params = [p for p in trainable(module) if id(p) not in claimed]
        claimed.update(map(id, params))
        overrides = {k: v for k, v in part.model_dump().items() if v is not None}
        groups.append({"params": params, **overrides})
    rest = [p for p in trainable(model) if id(p) not in claimed]
    return [{"params": rest}, *(g for g in groups if g["params"])] if rest else [g for g in groups if g["params"]]


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
