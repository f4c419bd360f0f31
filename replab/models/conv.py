"""Convolutional encoder and decoder, configured layer by layer.

Defaults are study A1's CIFAR autoencoder (3->64->128->256, k4 s2 p1, linear to 128);
study E1's Fashion-MNIST autoencoder is ``channels=[8,16,32] kernels=[4,4,3]
paddings=[1,1,0] hidden=[64]`` with the decoder mirroring it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models.layers import activation as make_activation
from replab.models.layers import flat_size, mlp, per_layer
from replab.models.registry import MODELS


@MODELS.register("conv")
class ConvEncoder(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        latent_dim: int = 128,
        channels: Sequence[int] = (64, 128, 256),
        kernels: int | list[int] = 4,
        strides: int | list[int] = 2,
        paddings: int | list[int] = 1,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n = len(channels)
        k, s, p = (
            per_layer(kernels, n, "kernels"),
            per_layer(strides, n, "strides"),
            per_layer(paddings, n, "paddings"),
        )
        convs: list[nn.Module] = []
        c_in = in_shape[0]
        for c_out, ki, si, pi in zip(channels, k, s, p, strict=True):
            convs += [nn.Conv2d(c_in, c_out, ki, si, pi), make_activation(activation)]
            c_in = c_out
        self.features = nn.Sequential(*convs)
        with torch.no_grad():
            self.feature_shape = tuple(self.features(torch.zeros(1, *in_shape)).shape[1:])
        if min(self.feature_shape[1:]) < 1:
            raise ConfigError(
                f"conv encoder shrinks a {tuple(in_shape)} image to nothing",
                "use fewer conv layers or smaller strides",
            )
        self.latent_dim = latent_dim
        self.project = mlp(
            [flat_size(self.feature_shape), *hidden, latent_dim], activation, dropout
        )
        self.spec = dict(
            channels=list(channels), kernels=k, strides=s, paddings=p, hidden=list(hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(x).flatten(1))


@MODELS.register("conv_decoder")
class ConvDecoder(nn.Module):
    """Linear layers up to ``feature_shape``, then transposed convs to ``out_shape``.

    Unset layer settings mirror the encoder (passed in as ``mirror``), so a symmetric
    autoencoder needs only ``decoder: {name: conv_decoder}``.
    """

    def __init__(
        self,
        latent_dim: int,
        out_shape: tuple[int, ...],
        feature_shape: tuple[int, ...] | None = None,
        channels: list[int] | None = None,
        kernels: int | list[int] | None = None,
        strides: int | list[int] | None = None,
        paddings: int | list[int] | None = None,
        hidden: list[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        output_activation: str | None = "sigmoid",
        mirror: dict | None = None,
    ) -> None:
        super().__init__()
        mirror = mirror or {}
        if feature_shape is None:
            raise ConfigError(
                "conv_decoder needs the encoder's feature shape",
                "pair it with the conv encoder, or set decoder.feature_shape=[C,H,W]",
            )
        enc_channels = mirror.get("channels", [])
        channels = list(channels) if channels is not None else list(reversed(enc_channels[:-1]))
        n = len(channels) + 1
        k = per_layer(_mirrored(kernels, mirror, "kernels", 4), n, "kernels")
        s = per_layer(_mirrored(strides, mirror, "strides", 2), n, "strides")
        p = per_layer(_mirrored(paddings, mirror, "paddings", 1), n, "paddings")
        hidden = list(hidden) if hidden is not None else list(reversed(mirror.get("hidden", [])))
        self.feature_shape = tuple(feature_shape)
        self.out_shape = tuple(out_shape)
        self.expand = mlp(
            [latent_dim, *hidden, flat_size(feature_shape)],
            activation,
            dropout,
            last_act=activation,
        )
        layers: list[nn.Module] = []
        c_in = feature_shape[0]
        for i, (c_out, ki, si, pi) in enumerate(
            zip([*channels, out_shape[0]], k, s, p, strict=True)
        ):
            layers.append(nn.ConvTranspose2d(c_in, c_out, ki, si, pi))
            layers.append(
                make_activation(activation) if i < n - 1 else make_activation(output_activation)
            )
            c_in = c_out
        self.deconv = nn.Sequential(*layers)
        with torch.no_grad():
            got = tuple(self.deconv(torch.zeros(1, *feature_shape)).shape[1:])
        if got != self.out_shape:
            raise ConfigError(
                f"conv decoder produces images of shape {got}, the data has {self.out_shape}",
                "adjust decoder kernels/strides/paddings so the output matches",
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.expand(z).view(-1, *self.feature_shape))


def _mirrored(given, mirror: dict, key: str, default: int):
    """The decoder's setting: as given, else the encoder's in reverse order, else ``default``."""
    if given is not None:
        return given
    return list(reversed(mirror[key])) if mirror.get(key) else default
