"""Optimizer construction from the spec."""

from __future__ import annotations

import torch
from torch import nn

from replab.spec import OptimizerSpec


def build_optimizer(params, spec: OptimizerSpec, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad] if not isinstance(params, list) else params
    # Fused kernels are a measured win on CUDA; on CPU the foreach path is the fast one.
    extra = {"fused": True} if device.type == "cuda" else {}
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, **extra)
    if spec.name == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay, **extra)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay, nesterov=spec.nesterov and spec.momentum > 0)


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
