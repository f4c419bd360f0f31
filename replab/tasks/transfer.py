"""Copy parts of a trained model into a new one, and freeze parts (study B4's four cases)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from replab.errors import CheckpointError, ConfigError
from replab.io import load_checkpoint, load_state_into
from replab.spec import PretrainedSpec


def load_pretrained(model: nn.Module, spec: PretrainedSpec) -> None:
    """Copy ``spec.modules`` of the checkpoint's model into ``model``'s modules of the same name."""
    path = Path(spec.path)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    state = load_checkpoint(path)
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no model weights", "point model.pretrained.path at a replab run folder or its best.pt")
    for name in spec.modules:
        target = submodule(model, name, "model.pretrained.modules")
        prefix = f"{name}."
        part = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if not part:
            have = sorted({k.split(".")[0] for k in weights})
            raise CheckpointError(f"checkpoint {str(path)!r} has no {name!r} weights (it has: {', '.join(have)})", "list modules the checkpoint has in model.pretrained.modules")
        load_state_into(target, part, path)


def freeze(model: nn.Module, names: list[str]) -> None:
    for name in names:
        for p in submodule(model, name, "model.freeze").parameters():
            p.requires_grad_(False)


def submodule(model: nn.Module, name: str, where: str) -> nn.Module:
    children = dict(model.named_children())
    if name not in children:
        raise ConfigError(f"{where}: this model has no part {name!r}", f"use one of: {', '.join(children)}")
    return children[name]
