"""A small Vision Transformer for 28-32 px images: ``model.encoder: {name: vit}``.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021 (arXiv:2010.11929). The image is cut into ``patch_size`` squares, each
linearly embedded (a strided convolution), a learned class token is prepended and learned
position embeddings added; ``depth`` pre-norm blocks of multi-head self-attention and a GELU
MLP follow, then a final layer norm. The latent is the class token (``pool: cls``, as ViT and
DINO read it) or the mean of the patch tokens (``pool: mean``, as MAE fine-tunes), of size
``width``.

Defaults are ViT-Tiny's width and heads (192, 3: 64 per head) on 4 px patches, 6 blocks
instead of 12: a 32 px image is an 8x8 grid of 64 tokens (a 28 px one 7x7), as the
small-image ViT baselines use; the ImageNet ViT's 16 px patches would leave a 2x2 grid.

The token steps are public so MAE can run the encoder on the visible patches only:
``embed(x)`` gives the N x L x width patch tokens (position included), ``encode(tokens)`` runs
the class token and any subset of them through the blocks, ``pool`` reads the latent.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from replab.errors import ConfigError
from replab.models.registry import MODELS


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ConfigError(
                f"a transformer width of {width} does not split into {heads} heads",
                "choose heads dividing width (e.g. width 192 with 3 heads)",
            )
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        # (3, N, heads, T, c / heads)
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, T, c / heads)
        return self.proj(out.transpose(1, 2).reshape(n, t, c))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), patches in row-major order, each as (p, p, C) pixels."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, p: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of ``patchify`` for images of ``shape`` (C, H, W)."""
    c, h, w = shape
    n = patches.shape[0]
    x = patches.reshape(n, h // p, w // p, p, p, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, c, h, w)


def check_patches(shape: tuple[int, ...], p: int, who: str) -> int:
    """The number of ``p`` x ``p`` patches of an image of ``shape``; a ConfigError if they do
    not tile it."""
    if p < 1 or shape[1] % p or shape[2] % p:
        raise ConfigError(
            f"{who}: patches of {p} px do not tile {shape[1]}x{shape[2]} images",
            "choose a patch_size dividing the image side (4 for 28 or 32 px images)",
        )
    return (shape[1] // p) * (shape[2] // p)


@MODELS.register("vit")
class ViT(nn.Module):
    token_steps = True  # MAE may run ``encode`` on a subset of the ``embed`` tokens

    def __init__(
        self,
        in_shape: tuple[int, ...],
        patch_size: int = 4,
        width: int = 192,
        depth: int = 6,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        pool: str = "cls",
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ConfigError(f"vit pool must be cls or mean (got {pool!r})", "write pool: cls")
        self.num_patches = check_patches(tuple(in_shape), patch_size, "vit")
        self.patch_size, self.width, self.pool_mode = patch_size, width, pool
        self.latent_dim = width
        self.patch_embed = nn.Conv2d(in_shape[0], width, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, width))
        self.blocks = nn.Sequential(*(Block(width, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)  # ViT's and timm's initialisation
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @property
    def block_names(self) -> list[str]:
        """The transformer blocks in input order (``model.pretrained.blocks`` counts these)."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, width) patch tokens with their position embeddings."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        return tokens + self.pos_embed[:, 1:]

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, T, width) patch tokens (all, or MAE's visible ones) -> (N, 1 + T, width): the
        class token first, through the blocks and the final norm."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(tokens), -1, -1)
        return self.norm(self.blocks(torch.cat([cls, tokens], dim=1)))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """(N, 1 + T, width) -> (N, width): the class token, or the patch tokens' mean."""
        return h[:, 0] if self.pool_mode == "cls" else h[:, 1:].mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode(self.embed(x)))
