"""VGG-16 with batch normalisation as a feature encoder (study F2, report 004).

The convolutional part is torchvision's ``vgg16_bn().features``: 13 conv3x3-BN-ReLU
layers in five stages (64, 64 | 128, 128 | 256 x3 | 512 x3 | 512 x3), each stage
ending in a 2x2 max-pool, so a 32x32 CIFAR image leaves as 512 x 1 x 1. ``width``
scales every stage's channels (1 is the standard network; 0.125 is a 64x cheaper one
for quick CPU profiles). ``pool`` is the side of the adaptive average pool before the
linear map to ``latent_dim``: 1 (default) feeds the 512 features straight in; 7 is
torchvision's ``AdaptiveAvgPool2d((7, 7))``, which copies a 1x1 map 49 times and gives
report 004's exact head, ``Linear(25088, 64)`` with 1,605,696 parameters (16,328,832
in all). ``block_names`` lists the five stages, so ``model.pretrained.blocks: k``
transfers the first k.
"""

from __future__ import annotations

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models.registry import MODELS

VGG16 = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


@MODELS.register("vgg16_bn")
class VGG16BN(nn.Module):
    def __init__(
        self, in_shape: tuple[int, ...], latent_dim: int = 64, width: float = 1.0, pool: int = 1
    ) -> None:
        super().__init__()
        if not width > 0:
            raise ConfigError(
                f"vgg16_bn width must be > 0 (got {width})",
                "use 1 for the standard network, e.g. 0.125 for a quick profile",
            )
        if pool < 1:
            raise ConfigError(
                f"vgg16_bn pool must be >= 1 (got {pool})", "use 1, or 7 for torchvision's head"
            )
        if min(in_shape[1:]) < 32:
            raise ConfigError(
                "vgg16_bn halves the image "
                f"five times and needs at least 32x32 inputs, got {tuple(in_shape)}",
                "use 32x32 data (CIFAR-10) or another encoder",
            )
        stages, c_in = [], in_shape[0]
        for stage in VGG16:
            layers: list[nn.Module] = []
            for c in stage:
                c_out = max(1, round(c * width))
                layers += [
                    nn.Conv2d(c_in, c_out, 3, padding=1),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True),
                ]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.project = nn.Linear(c_in * pool * pool, latent_dim)
        self.latent_dim = latent_dim
        for m in self.stages.modules():  # torchvision's VGG initialisation of the conv part
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def block_names(self) -> list[str]:
        """The five conv stages, in input order (``model.pretrained.blocks`` counts these)."""
        return [f"stages.{i}" for i in range(len(self.stages))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.pool(self.stages(x)).flatten(1))
