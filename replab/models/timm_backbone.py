"""Any timm model as an encoder: ``model.encoder: {name: timm, model: resnet18}``.

timm (Wightman, "PyTorch Image Models", github.com/huggingface/pytorch-image-models) is the
library of backbones the self-supervised libraries build on (solo-learn, lightly,
stable-pretraining). The model is built by ``timm.create_model`` with ``num_classes=0``, so
its output is the pooled feature vector (``latent_dim = model.num_features``), and with
``in_chans`` set to the data's channels; ``img_size`` is set to the data's side too for the
models whose constructor takes it (ViTs, Swin...; a convnet pools whatever size it is given
and refuses the key, so it is left out for those). ``kwargs`` goes to ``create_model`` as it
is (``patch_size``, ``drop_path_rate``, ``embed_dim``...): ``{name: timm, model:
vit_tiny_patch16_224, kwargs: {patch_size: 4}}`` is a ViT-Tiny on 4x4 patches of a 32 px
image.

Weights: ``pretrained: false`` (the default) is timm's own initialisation. ``pretrained:
true`` never touches the network at run time: the weights come from ``weights`` (a local
file: .safetensors, .pth, .bin or timm's .npz) or, without it, from a copy already on this
machine (the Hugging Face hub cache, or torch hub's checkpoints folder for timm's older
URL weights). When neither exists the run stops with a ConfigError that says how to fetch
them once. timm adapts the first layer to other channel counts and drops the classifier.

timm is imported when such an encoder is built, not when replab starts (it takes seconds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from replab.errors import ConfigError
from replab.models.registry import MODELS

# files a model's hub repository may hold its weights in, in timm's order of preference
HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


@MODELS.register("timm")
class TimmEncoder(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, ...],
        model: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        timm = _import_timm()
        if not timm.is_model(model):
            raise ConfigError(
                f"timm has no model {model!r}",
                "name one of timm.list_models() (e.g. resnet18, convnext_atto, "
                "vit_tiny_patch16_224)",
            )
        if weights is not None and not pretrained:
            raise ConfigError(
                "model.encoder.weights is set but pretrained is false",
                "set model.encoder.pretrained=true to load it, or drop weights",
            )
        options = {"num_classes": 0, "in_chans": in_shape[0], **(kwargs or {})}
        if pretrained:
            options["pretrained_cfg_overlay"] = _local_weights(timm, model, weights)
        self.net = _create(timm, model, pretrained, options, tuple(in_shape[1:]))
        self.latent_dim = int(self.net.num_features)
        self.timm_model = model
        _check_size(self.net, model, tuple(in_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (N, num_features): pooled, no classifier

    # MAE's token steps (``replab.models.mae``), for a plain timm VisionTransformer: a class
    # token, position embeddings on a fixed grid, no register tokens. Together they compute
    # what timm's own forward does (checked in the tests); MAE runs ``encode`` on a subset.
    @property
    def token_steps(self) -> bool:
        from timm.models.vision_transformer import VisionTransformer

        net = self.net
        return (
            isinstance(net, VisionTransformer)
            and net.cls_token is not None
            and net.reg_token is None
            and net.pos_embed is not None
            and not net.dynamic_img_size
            and len(set(net.patch_embed.patch_size)) == 1
        )

    @property
    def width(self) -> int:
        return int(self.net.embed_dim)

    @property
    def patch_size(self) -> int:
        return int(self.net.patch_embed.patch_size[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, width) patch tokens with their position embeddings."""
        net = self.net
        pos = net.pos_embed if net.no_embed_class else net.pos_embed[:, net.num_prefix_tokens :]
        return net.patch_embed(x) + pos

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, T, width) patch tokens -> (N, 1 + T, width) through the blocks, class first."""
        net = self.net
        cls = net.cls_token if net.no_embed_class else net.cls_token + net.pos_embed[:, :1]
        seq = torch.cat([cls.expand(len(tokens), -1, -1), tokens], dim=1)
        return net.norm(net.blocks(net.norm_pre(seq)))

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(h, pre_logits=True)


def _check_size(net: nn.Module, model: str, in_shape: tuple[int, ...]) -> None:
    """One image through the network now: a convnet that downsamples 32x (ConvNeXt's stem and
    three stages) cannot take 28 px images, and says so here rather than mid-training."""
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, *in_shape))
    except RuntimeError as err:
        first = (str(err).splitlines() or [""])[0][:200]
        raise ConfigError(
            f"timm model {model!r} cannot take images of shape {in_shape}: {first}",
            "pad or resize the data (data.image_size), or pick a model that downsamples "
            "less (e.g. resnet18, or a ViT with kwargs.patch_size=4)",
        ) from None
    finally:
        net.train()


def _import_timm():
    try:
        import timm
    except ImportError:
        raise ConfigError(
            "model.encoder name 'timm' needs the timm package",
            "pip install timm (replab lists it as a dependency: reinstall replab)",
        ) from None
    return timm


def _create(timm, model: str, pretrained: bool, options: dict, size: tuple[int, ...]):
    """``create_model`` with ``img_size`` set to the data's when the model's class takes it:
    timm's entry points pass every keyword on, so a class without one refuses it (TypeError)
    before building anything, and is then built without."""
    if "img_size" not in options:
        try:
            return timm.create_model(model, pretrained=pretrained, img_size=size, **options)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
    return timm.create_model(model, pretrained=pretrained, **options)


def _local_weights(timm, model: str, weights: str | None) -> dict[str, Any]:
    """timm's pretrained-config overlay that points at a file on this machine, found without
    the network; a ConfigError saying how to get one when there is none."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"model.encoder.weights: no file {str(path)!r}",
                "give the path of a timm checkpoint (.safetensors, .pth, .bin or .npz)",
            )
        return {"file": str(path), "custom_load": path.suffix == ".npz"}
    cfg = timm.models.get_pretrained_cfg(model)
    found = _cached(cfg) if cfg is not None else None
    if found is None:
        raise ConfigError(
            f"no pretrained weights for timm model {model!r} on this machine "
            "(replab does not download at run time; it looked in the Hugging Face hub cache "
            f"{_hub_cache()} and torch hub's {Path(torch.hub.get_dir()) / 'checkpoints'})",
            f'fetch them once where there is a network: python -c "import timm; '
            f"timm.create_model('{model}', pretrained=True)\" (then copy the cache here), or "
            "set model.encoder.weights=/path/to/checkpoint, or pretrained=false",
        )
    return {"file": found, "custom_load": found.endswith(".npz")}


def _cached(cfg) -> str | None:
    """The weights file of ``cfg`` already in a local cache, or None; never downloads."""
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES
        for name in names:
            path = try_to_load_from_cache(cfg.hf_hub_id, name)
            if isinstance(path, str) and os.path.isfile(path):
                return path
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if path.is_file():
            return str(path)
    return None


def _hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)
