"""ResNet-18 as a feature encoder (study A3 SimCLR on CIFAR-10).

``stem: cifar`` is the usual 32x32 adaptation: a 3x3 stride-1 first convolution and no
max-pool, so the first stage still sees the full 32x32 image. ``width`` scales every
stage (64 is the standard network; 16 is a 16x cheaper one for quick CPU profiles).
The latent is the global-average-pooled last stage (512 at width 64).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from replab.models.registry import MODELS


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@MODELS.register("resnet18")
class ResNet18(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int = 64,
        stem: Literal["cifar", "imagenet"] = "cifar",
    ) -> None:
        super().__init__()
        c = in_shape[0]
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(c, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(c, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        stages, c_in = [], width
        for i, blocks in enumerate((2, 2, 2, 2)):
            c_out = width * 2**i
            stages.append(
                nn.Sequential(
                    *(
                        BasicBlock(c_in if b == 0 else c_out, c_out, 2 if (b == 0 and i > 0) else 1)
                        for b in range(blocks)
                    )
                )
            )
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.latent_dim = c_in

    @property
    def block_names(self) -> list[str]:
        """The stem and the four stages, in input order
        (``model.pretrained.blocks`` counts these)."""
        return ["stem", *(f"stages.{i}" for i in range(len(self.stages)))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean((2, 3))
