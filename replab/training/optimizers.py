"""Optimizers and parameter groups, each registered by name like models are.

``trainer.optimizer.name`` picks a builder from OPTIMIZERS and ``trainer.optimizer.groups`` a
rule from PARAM_GROUPS that splits the model's trainable parameters into groups. A new
optimizer is one decorated function here (or in any module of this package's layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from replab.errors import ConfigError
from replab.registry import Registry
from replab.spec import OptimizerSpec

OPTIMIZERS = Registry("optimizer")
PARAM_GROUPS = Registry("parameter grouping")
FUSED_DEVICES = ("cuda", "cpu")

Builder = Callable[[list[dict], OptimizerSpec, dict], torch.optim.Optimizer]


def build_optimizer(
    model: nn.Module, spec: OptimizerSpec, device: torch.device
) -> torch.optim.Optimizer:
    check_optimizer(spec)
    groups = PARAM_GROUPS.get(spec.groups)(model, spec)
    # Fused kernels are a measured win on both CUDA and CPU (torch 2.14, 2-core AVX2: Adam's step
    # 6x faster than the default per-tensor loop, which foreach makes slower still; SGD 1.7x).
    extra = {"fused": True} if device.type in FUSED_DEVICES else {}
    return OPTIMIZERS.get(spec.name)(groups, spec, extra)


def check_optimizer(spec: OptimizerSpec) -> None:
    """Unknown names are ConfigErrors that list the registered ones (before any folder exists)."""
    OPTIMIZERS.get(spec.name, where="trainer.optimizer.name")
    PARAM_GROUPS.get(spec.groups, where="trainer.optimizer.groups")


@OPTIMIZERS.register("adam")
def adam(groups: list[dict], spec: OptimizerSpec, extra: dict) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=spec.lr, weight_decay=spec.weight_decay, **extra)


@OPTIMIZERS.register("adamw")
def adamw(groups: list[dict], spec: OptimizerSpec, extra: dict) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=spec.lr, weight_decay=spec.weight_decay, **extra)


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict], spec: OptimizerSpec, extra: dict) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        nesterov=spec.nesterov and spec.momentum > 0,
        **extra,
    )


@OPTIMIZERS.register("lars")
def lars(groups: list[dict], spec: OptimizerSpec, extra: dict) -> torch.optim.Optimizer:
    # no fused kernel exists for LARS: ``extra`` is not passed on
    return LARS(
        groups,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        trust_coefficient=spec.trust_coefficient,
    )


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You, Gitman and Ginsburg 2017, arXiv:1708.03888), as
    BYOL and Barlow Twins train with it. For each weight ``w`` with gradient ``g``::

        u = g + wd * w;  u *= eta * |w| / |u|  (if both norms > 0);  v = m * v + u;  w -= lr * v

    Parameters with one dimension (biases, normalisation scales and shifts) are excluded from
    both the weight decay and the adaptation, as both papers do: they take plain SGD with
    momentum (``u = g``).
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict) -> None:
        u = cast(torch.Tensor, p.grad)
        if p.ndim > 1:
            u = u.add(p, alpha=group["weight_decay"])
            w_norm, u_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(u)
            one = torch.ones_like(w_norm)
            trust = torch.where(
                (w_norm > 0) & (u_norm > 0), group["trust_coefficient"] * w_norm / u_norm, one
            )
            u = u * trust
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        v = state["momentum_buffer"]
        v.mul_(group["momentum"]).add_(u)
        p.add_(v, alpha=-group["lr"])


@PARAM_GROUPS.register("parts")
def param_groups(model: nn.Module, spec: OptimizerSpec) -> list[dict]:
    """One group per part named in ``spec.parts`` (with its own lr /
    weight decay), one for the rest."""
    groups: list[dict] = []
    claimed: set[int] = set()
    for name, part in spec.parts.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ConfigError(
                f"trainer.optimizer.parts: this model has no part {name!r}",
                f"use one of: {', '.join(n for n, _ in model.named_children())}",
            ) from None
        params = [p for p in trainable(module) if id(p) not in claimed]
        claimed.update(map(id, params))
        overrides = {k: v for k, v in part.model_dump().items() if v is not None}
        groups.append({"params": params, **overrides})
    rest = [p for p in trainable(model) if id(p) not in claimed]
    return (
        [{"params": rest}, *(g for g in groups if g["params"])]
        if rest
        else [g for g in groups if g["params"]]
    )


@PARAM_GROUPS.register("no_decay_bias_norm")
def no_decay_bias_norm(model: nn.Module, spec: OptimizerSpec) -> list[dict]:
    """``parts``, then biases and normalisation weights moved to groups without weight decay.

    The usual rule of large-batch self-supervised training (SimCLR, BYOL): decaying a
    batch-norm scale or a bias towards 0 only fights the normalisation.
    """
    exempt = {
        id(p)
        for m in model.modules()
        for n, p in m.named_parameters(recurse=False)
        if n.endswith("bias") or isinstance(m, NORMS)
    }
    out = []
    for group in param_groups(model, spec):
        decayed = [p for p in group["params"] if id(p) not in exempt]
        free = [p for p in group["params"] if id(p) in exempt]
        out += [
            g
            for g in ({**group, "params": decayed}, {**group, "params": free, "weight_decay": 0.0})
            if g["params"]
        ]
    return out


NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
