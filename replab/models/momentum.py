"""A momentum-updated copy of a module (BYOL's target network, MoCo's key encoder).

``Momentum(online)`` holds a deep copy of ``online`` that is never trained by gradients: its
parameters do not require them, so no optimizer ever sees them, and it follows the online
module only through ``update(m)``, ``target = m * target + (1 - m) * online``. It is an
ordinary submodule of the model, so its weights are in the model's state dict: checkpoints
carry it and a resumed run continues from the exact target it had.

Only parameters are averaged. Buffers (batch-norm running statistics) evolve through the
copy's own forward passes, as in BYOL's and MoCo's released code.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class Momentum(nn.Module):
    def __init__(self, online: nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(online).requires_grad_(False)
        # in a list, so the online module is not registered twice (its weights would appear
        # under this part's name in the state dict and the optimizer)
        self._online = [online]

    @property
    def online(self) -> nn.Module:
        return self._online[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # the target gives the regression/contrast targets only
            return self.module(x)

    @torch.no_grad()
    def update(self, m: float) -> None:
        """``target <- m * target + (1 - m) * online`` for every parameter."""
        target, online = self._pairs()
        torch._foreach_lerp_(target, online, 1.0 - m)

    @torch.no_grad()
    def reset(self) -> None:
        """Make the copy equal to the online module again, buffers included (after the
        online module was re-initialised or loaded with pretrained weights)."""
        self.module.load_state_dict(self.online.state_dict())

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        target = [p.data for p in self.module.parameters()]
        online = [p.data for p in self.online.parameters()]
        if len(target) != len(online):
            raise RuntimeError("the momentum copy no longer mirrors its online module")
        return target, online


def momentum_at(base: float, done: int, total: int, schedule: str) -> float:
    """The momentum of the update after ``done`` of ``total`` steps: constant ``base``
    (MoCo), or BYOL's ``1 - (1 - base) * (cos(pi * done / total) + 1) / 2``, rising from
    ``base`` at ``done = 0`` to 1 at ``done = total`` (and staying 1 past it). The task
    passes the steps done before each update, 0 to total - 1, as BYOL's code does: its first
    update uses ``base``, its last one just under 1. A function of the step alone, so a
    resumed run follows the same curve."""
    if schedule == "constant":
        return base
    fraction = min(1.0, done / max(1, total))
    return 1.0 - (1.0 - base) * (math.cos(math.pi * fraction) + 1) / 2
