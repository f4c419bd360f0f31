"""Copy parts of a trained model into a new one, and freeze parts (studies B4 and C3).

Parts are named by dotted module paths (``encoder``, ``encoder.blocks.0``). With
``model.pretrained.blocks: k`` only the first k blocks of each listed module are copied; a
module is block-structured when it lists its blocks in ``block_names`` (cnn, resnet18).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from replab.errors import CheckpointError, ConfigError
from replab.io import load_checkpoint, load_state_into
from replab.spec import PretrainedSpec


def load_pretrained(model: nn.Module, spec: PretrainedSpec) -> list[str]:
    """Copy the checkpoint's weights of ``spec.modules`` (or their first ``spec.blocks``
    blocks) into ``model``'s modules of the same name; returns the dotted names copied."""
    path = Path(spec.path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    state = load_checkpoint(path)
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds no model weights",
            "point model.pretrained.path at a replab run folder or its best.pt",
        )
    copied = [name for module in spec.modules for name in _parts(model, module, spec.blocks)]
    for name in copied:
        prefix = f"{name}."
        part = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        if not part:
            have = sorted({k.split(".")[0] for k in weights})
            raise CheckpointError(
                f"checkpoint {str(path)!r} has no {name!r} weights (it has: {', '.join(have)})",
                "list modules the checkpoint has in model.pretrained.modules",
            )
        load_state_into(submodule(model, name, "model.pretrained.modules"), part, path)
    return copied


def _parts(model: nn.Module, module: str, blocks: int | None) -> list[str]:
    if blocks is None:
        return [module]
    names = getattr(submodule(model, module, "model.pretrained.modules"), "block_names", None)
    if names is None:
        raise ConfigError(
            f"model.pretrained.blocks: the {module!r} of this model is not made of blocks",
            "use a block-structured encoder "
            "(cnn, resnet18), or drop model.pretrained.blocks to copy it whole",
        )
    if blocks > len(names):
        raise ConfigError(
            f"model.pretrained.blocks={blocks}, but {module!r} has {len(names)} blocks",
            f"use 1 to {len(names)}",
        )
    return [f"{module}.{name}" for name in names[:blocks]]


def freeze(model: nn.Module, names: list[str]) -> None:
    for name in names:
        for p in submodule(model, name, "model.freeze").parameters():
            p.requires_grad_(False)


def submodule(model: nn.Module, name: str, where: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        children = dict(model.named_children())
        raise ConfigError(
            f"{where}: this model has no part {name!r}",
            f"use one of: {', '.join(children)} (or a dotted path inside one)",
        ) from None
