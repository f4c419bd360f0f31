"""What a tune study is started with (``tune.json``) and what it returns."""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pydantic

import replab
from replab.errors import ConfigError, ReplabError
from replab.io import atomic_write_json
from replab.runs import schema
from replab.search.space import (
    Space,
)

TUNE_JSON = "tune.json"
SPACE_YAML = "space.yaml"
DB = "optuna.db"
BEST_YAML = "best.yaml"
TRIALS_CSV = "trials.csv"
# user attribute of a trial a worker asked for and gave back (another worker took the last slot)
SURPLUS = "surplus"
DIRECTIONS = ("minimize", "maximize")


@dataclass
class TuneSettings:
    """Everything a study needs to be continued; saved as ``tune.json`` in the study folder."""

    recipe: dict
    recipe_source: str
    space: dict
    trials: int
    overrides: list[str] = field(default_factory=list)
    metric: str = "val.loss"
    direction: str = "minimize"
    storage: str | None = None  # None: sqlite:///STUDY_DIR/optuna.db
    study_name: str = ""
    seed: int = 0
    prune: bool = True
    prune_startup: int = 5  # trials that complete before the median rule prunes anything
    prune_warmup: int = 0  # epochs of every trial never pruned
    # points (space key -> value) tried first, before the sampler draws
    enqueue: list[dict] = field(default_factory=list)

    @property
    def epoch_key(self) -> str:
        """The per-epoch record key of the metric: val.loss -> val_loss."""
        return self.metric.replace(".", "_", 1)

    @property
    def name(self) -> str:
        return str(self.recipe.get("name", "experiment"))

    def enqueued(self, space: Space) -> list[dict]:
        """The --enqueue points as Optuna stores them; a point outside
        ``space`` is a ConfigError."""
        return [
            space.stored_point(point, f"--enqueue #{i + 1}") for i, point in enumerate(self.enqueue)
        ]


@dataclass
class TuneResult:
    study_dir: Path
    finished: int
    counts: dict[str, int]
    best: dict | None  # number, value, params
    best_yaml: Path | None


def load_settings(study_dir: Path) -> TuneSettings:
    path = Path(study_dir) / TUNE_JSON
    if not path.is_file():
        raise ReplabError(
            f"{str(study_dir)!r} is not a tune study folder (no {TUNE_JSON})",
            "pass a folder written by `replab tune`",
        )
    fix = "restore it, or start a new study"
    data = schema.read_json(path, fix)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "replab_version"}
    try:
        # strict: the types the dataclass declares, no extra keys (a field a worker would ignore)
        _settings_schema().model_validate(data)
        return TuneSettings(**data)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise ReplabError(
            f"{path} is not a valid tune settings file: {key}: {first['msg'].lower()}", fix
        ) from None


@functools.cache
def _settings_schema() -> type[pydantic.BaseModel]:
    """TuneSettings' fields as a strict pydantic model (the dataclass stays plain)."""
    hints = typing.get_type_hints(TuneSettings)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TuneSettings):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = pydantic.Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (hints[f.name], default)
    config = pydantic.ConfigDict(strict=True, extra="forbid")
    return pydantic.create_model("TuneSettings", __config__=config, **fields)


def save_settings(study_dir: Path, settings: TuneSettings) -> None:
    data = asdict(settings)
    data["storage"] = masked_url(settings.storage) if settings.storage else None
    atomic_write_json(Path(study_dir) / TUNE_JSON, {**data, "replab_version": replab.__version__})


def masked_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a journal file storage): keep as given
        return url


def check_settings(s: TuneSettings) -> None:
    if s.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {s.trials}", "pass e.g. --trials 20")
    if s.direction not in DIRECTIONS:
        raise ConfigError(
            f"--direction {s.direction!r} is not minimize or maximize",
            "pass --direction minimize (losses) or maximize (accuracies)",
        )
    if not s.metric or "." not in s.metric:
        raise ConfigError(
            f"--metric {s.metric!r} is not a summary metric name",
            "use a name from a run's summary.json, e.g. val.loss or probe.val_accuracy",
        )
    if s.prune_startup < 0 or s.prune_warmup < 0:
        raise ConfigError("--prune-startup and --prune-warmup cannot be negative", "pass 0 or more")
