"""DINO's projection head (Caron et al., "Emerging Properties in Self-Supervised Vision
Transformers", ICCV 2021, arXiv:2104.14294, section 3.1 and appendix): an MLP of ``layers``
linear layers (GELU between, ``hidden`` wide) to a ``bottleneck``, l2-normalisation, then a
weight-normalised linear layer without bias to ``out_dim`` scores (the prototypes). Its output
feeds DINO's softmax; the probes read the encoder before it.

Published: hidden 2048, bottleneck 256, 3 layers, out_dim 65536, the last layer's length
fixed to 1 (``norm_last_layer: true``: only its directions learn). replab's DINO recipe uses
out_dim 1024 for 10-class 28 px data: 65536 prototypes for 60000 images leaves most unused.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from replab.errors import ConfigError
from replab.models.layers import mlp
from replab.models.registry import MODELS


@MODELS.register("dino_head")
class DINOHead(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden: int = 2048,
        bottleneck: int = 256,
        layers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"dino_head layers must be >= 1 (got {layers})", "use 3")
        self.out_dim = out_dim
        self.mlp = mlp([in_dim, *[hidden] * (layers - 1), bottleneck], "gelu")
        self.last = weight_norm(nn.Linear(bottleneck, out_dim, bias=False))
        g = self.last.parametrizations.weight.original0  # (out_dim, 1): each prototype's length
        with torch.no_grad():
            g.fill_(1.0)
        g.requires_grad_(not norm_last_layer)
        for m in self.mlp.modules():  # DINO's initialisation of its MLP
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(h), dim=-1))
