"""The recipes that ship with replab: one YAML file per study part, runnable by name.

``replab run a1-mnist-autoencoder`` finds ``a1-mnist-autoencoder.yaml`` here; a path to any
other YAML file works the same way. ``load_spec`` reads one into a validated spec; this package
sits beside ``spec`` at the bottom of the stack (it imports only ``spec`` and ``errors``).
Files ending in ``-space.yaml`` are search spaces for ``replab tune``
(``replab tune RECIPE --space e2-fashion-space``), not recipes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from replab.errors import ConfigError
from replab.spec import (
    ExperimentSpec,
    apply_override,
    read_yaml_file,
    validate_spec,
    with_reference_data,
)

DEFAULT = "digits-autoencoder"
SPACE_SUFFIX = "-space"


def _stems() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".yaml")
    )


def names() -> list[str]:
    return [n for n in _stems() if not n.endswith(SPACE_SUFFIX)]


def space_names() -> list[str]:
    return [n for n in _stems() if n.endswith(SPACE_SUFFIX)]


def bundled_space(name: str) -> Path | None:
    """The packaged search space called ``name`` (with or without .yaml), or None."""
    stem = name.removesuffix(".yaml")
    if "/" in stem or stem not in space_names():
        return None
    return Path(str(resources.files(__name__).joinpath(f"{stem}.yaml")))


def bundled(name: str) -> Path | None:
    """The packaged recipe called ``name`` (with or without .yaml), or None."""
    stem = name.removesuffix(".yaml")
    if "/" in stem or stem not in names():
        return None
    return Path(str(resources.files(__name__).joinpath(f"{stem}.yaml")))


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe file, or a bundled recipe by name (``a1-mnist-autoencoder``)."""
    raw = read_yaml_file(path, "recipe", bundled, names())
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"recipe {str(path)!r} must be a mapping of keys, got {type(raw).__name__}",
            "start the file with keys like `name:`, `data:`, `model:`",
        )
    return with_reference_data(raw)


def load_spec(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = (), base: dict | None = None
) -> ExperimentSpec:
    raw = read_recipe(path) if path is not None else dict(base or {})
    for override in overrides:
        apply_override(raw, override)
    return validate_spec(raw)


def spec_for(
    recipe: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_dir: str | Path | None = None,
) -> ExperimentSpec:
    """The validated spec a run of ``recipe`` trains: a recipe file or bundled name (None: the
    default job) with ``KEY=VALUE`` overrides and, optionally, the dataset folder."""
    overrides = [*overrides, *([f"data.root={data_dir}"] if data_dir else [])]
    if recipe is None:
        return load_spec(None, overrides, base=read_recipe(DEFAULT))
    return load_spec(recipe, overrides)
