"""The masked autoencoder's parts: random patch masking, the light decoder, the model.

He, Chen, Xie, Li, Dollár and Girshick, "Masked Autoencoders Are Scalable Vision Learners",
CVPR 2022 (arXiv:2111.06377). A share ``mask_ratio`` of the patches is hidden at random (a
fresh permutation per image); the encoder sees the rest; a light transformer decoder gets the
encoded tokens back at their positions, a shared learned mask token at every hidden one,
position embeddings on all, and predicts every patch's pixels.

Two encoder kinds:

* a ViT (an encoder with the token steps ``embed``, ``encode``, ``pool``: replab's ``vit``,
  or a plain timm ViT) runs on the visible patches only, as in MAE: 25 % of the tokens at the
  default ratio;
* any other encoder (MLP, conv net, ResNet, a timm convnet) cannot drop tokens, so the hidden
  patches are set to zero in the input image instead (SimMIM's masking, Xie et al., CVPR 2022,
  arXiv:2111.09886, done in pixel space since such an encoder has no token to replace) and the
  encoder sees the whole masked image; its latent vector is the decoder's one context token,
  and the mask tokens at all positions read the patches from it.

``forward(x, noise)`` is the training path: ``noise`` (N x L, uniform) orders each image's
patches, the lowest ``(1 - mask_ratio) L`` kept (MAE's ``random_masking``); it returns the
predicted patches (N x L x p*p*C) and the mask (N x L, 1 = hidden). ``forward(x)`` without
noise is what a run's report calls: a mask drawn from a fixed seed (the same for every call),
and the image made of the visible patches and the predictions of the hidden ones (MAE's
figure), in the input's units; ``masked_input(x)`` is the same draw's masked image.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from replab.models.layers import latent_dim_of
from replab.models.registry import MODELS
from replab.models.vit import Block, ViT, patchify, unpatchify

EVAL_MASK_SEED = 20_220_611  # the report's masks: one fixed draw, so figures compare


def keep_count(num_patches: int, mask_ratio: float) -> int:
    """Patches left visible: MAE's ``int(L * (1 - mask_ratio))``, at least one."""
    return max(1, int(num_patches * (1 - mask_ratio)))


def random_masking(noise: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids_keep (N, keep), mask (N, L) with 1 on the hidden patches) from ``noise`` (N, L)."""
    order = noise.argsort(dim=1)  # ascending: the smallest noise is kept
    ids_keep = order[:, :keep]
    mask = torch.ones_like(noise)
    mask.scatter_(1, ids_keep, 0.0)
    return ids_keep, mask


def is_token_encoder(encoder: nn.Module) -> bool:
    """Whether the encoder can run on a subset of patch tokens: it says so (``token_steps``:
    replab's ViT, a plain timm ViT) and has ``embed``, ``encode``, ``pool``, ``width`` and
    ``patch_size``."""
    return bool(getattr(encoder, "token_steps", False))


@MODELS.register("mae_decoder")
class MAEDecoder(nn.Module):
    """The light decoder: a linear map of the encoder's tokens to ``width``, mask tokens,
    position embeddings, ``depth`` transformer blocks, a norm and a linear map to each patch's
    pixels. MAE's ImageNet decoder is 8 blocks of width 512; 2 of 128 here, a CPU-sized
    choice for a 7x7 or 8x8 grid (MAE's Table 1a: fine-tuning is the same with 2 blocks as
    with 8, linear probes lose 3.5 points)."""

    def __init__(
        self,
        in_dim: int,
        num_patches: int,
        patch_dim: int,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, width))
        self.blocks = nn.Sequential(*(Block(width, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, patch_dim)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)  # MAE's initialisation of the mask token

    def forward(
        self,
        context: torch.Tensor,
        visible: torch.Tensor | None = None,
        ids_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``context`` (N, T, in_dim): tokens with no place on the grid (a ViT's class token,
        or another encoder's latent vector); ``visible`` (N, K, in_dim): encoded patch tokens
        that go back to positions ``ids_keep`` (N, K). Returns (N, L, patch_dim)."""
        n, t = context.shape[0], context.shape[1]
        grid = self.mask_token.expand(n, self.pos_embed.shape[1], -1)  # (N, L, width)
        if visible is not None and ids_keep is not None:
            index = ids_keep[..., None].expand(-1, -1, grid.shape[2])
            grid = grid.scatter(1, index, self.embed(visible))
        seq = torch.cat([self.embed(context), grid + self.pos_embed], dim=1)
        return self.head(self.norm(self.blocks(seq))[:, t:])


class MaskedAutoencoder(nn.Module):
    # What the analysis decodes latent vectors with (interpolations, samples) is
    # ``model.decoder``; MAE's decoder reads patch tokens and a mask, not one latent vector,
    # so there is none to offer it (the decoder is ``mae_decoder``).
    decoder = None

    def __init__(
        self,
        encoder: nn.Module,
        mae_decoder: nn.Module,
        in_shape: tuple[int, ...],
        patch_size: int,
        mask_ratio: float,
        norm_pix: bool,
    ) -> None:
        super().__init__()
        self.encoder, self.mae_decoder = encoder, mae_decoder
        self.in_shape, self.patch_size = tuple(in_shape), patch_size
        self.num_patches = (in_shape[1] // patch_size) * (in_shape[2] // patch_size)
        self.keep = keep_count(self.num_patches, mask_ratio)
        self.norm_pix = norm_pix
        self.tokens = is_token_encoder(encoder)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        if noise is None:
            return self.reconstruct(x)
        return self.predict(x, noise)

    def predict(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted patches (N, L, p*p*C), mask (N, L)) for the masking ``noise`` orders."""
        ids_keep, mask = random_masking(noise, self.keep)
        if self.tokens:
            vit = cast(ViT, self.encoder)  # the token steps (any encoder that has them)
            tokens = vit.embed(x)  # (N, L, D)
            index = ids_keep[..., None].expand(-1, -1, tokens.shape[2])
            h = vit.encode(tokens.gather(1, index))  # (N, 1 + K, D)
            return self.mae_decoder(h[:, :1], h[:, 1:], ids_keep), mask
        z = self.encoder(self.hide(x, mask))  # (N, d)
        return self.mae_decoder(z[:, None, :]), mask

    def hide(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` with the hidden patches (``mask`` 1) set to zero."""
        keep = (1 - mask)[..., None].to(x.dtype).expand(-1, -1, self.patch_size**2 * x.shape[1])
        return unpatchify(keep, self.patch_size, tuple(x.shape[1:])) * x

    def eval_noise(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator(device=x.device).manual_seed(EVAL_MASK_SEED)
        return torch.rand(len(x), self.num_patches, generator=generator, device=x.device)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The visible patches of ``x`` and the predicted hidden ones, as images; predictions
        of per-patch normalised targets are put back in each patch's own mean and spread."""
        pred, mask = self.predict(x, self.eval_noise(x))
        patches = patchify(x, self.patch_size)
        if self.norm_pix:
            mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
            pred = pred * (var + 1e-6).sqrt() + mean
        out = torch.where(mask[..., None].bool(), pred.to(patches.dtype), patches)
        return unpatchify(out, self.patch_size, tuple(x.shape[1:]))

    def masked_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the report's reconstruction hid: ``x`` with the same fixed draw's patches at 0."""
        return self.hide(x, random_masking(self.eval_noise(x), self.keep)[1])

    @property
    def latent_dim(self) -> int:
        return latent_dim_of(self.encoder)
