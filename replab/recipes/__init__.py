"""The recipes that ship with replab: one YAML file per study part, runnable by name.

``replab run a1-mnist-autoencoder`` finds ``a1-mnist-autoencoder.yaml`` here; a path to any
other YAML file works the same way.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT = "digits-autoencoder"


def names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def bundled(name: str) -> Path | None:
    """The packaged recipe called ``name`` (with or without .yaml), or None."""
    stem = name.removesuffix(".yaml")
    if "/" in stem or stem not in names():
        return None
    return Path(str(resources.files(__name__).joinpath(f"{stem}.yaml")))
