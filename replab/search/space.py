"""Search spaces for `replab tune`: recipe key paths mapped to distributions, in YAML.

A space file maps each recipe key (as in an override, ``trainer.optimizer.lr``) to one of::

    model.encoder.latent_dim: {type: int, low: 8, high: 256, step: 8}      # step or log, not both
    model.encoder.dropout:    {type: float, low: 0.0, high: 0.5}
    trainer.optimizer.lr:     {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    trainer.optimizer.name:   {type: categorical, choices: [adam, sgd]}
    trainer.optimizer:        {type: categorical, choices: [{name: adam, lr: 0.001},
                                                            {name: sgd, lr: 0.01, momentum: 0.9}]}

Several keys separated by commas (``model.encoder.dropout,model.decoder.dropout``) take one
drawn value together. A categorical choice may be any YAML value, a whole mapping or list
included. Optuna stores only scalars, so such a parameter's choices are kept as canonical JSON
text in the study and turned back into the value when a trial's recipe is written. Values are
set in order of key depth, so a whole block (``trainer.optimizer``) is replaced before a key
inside it is tuned.

``check_space`` builds every model the space can produce at its bounds and at every choice,
before any trial runs, so a misspelt key or an impossible value fails at once.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replab.errors import ConfigError, ReplabError
from replab.spec import ExperimentSpec, apply_override, read_yaml_file, validate_spec

TYPES = ("int", "float", "categorical")
SCALARS = (str, int, float, bool, type(None))
FIX = "write each entry as KEY.PATH: {type: int|float|categorical, ...}; see docs/tuning.md"


@dataclass(frozen=True)
class Param:
    """One tuned key and its distribution."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()
    # categorical choices kept as JSON text (some choice is a mapping or list)
    encoded: bool = False

    # --- Optuna ---------------------------------------------------------------------------
    def suggest(self, trial) -> Any:
        """Draw this parameter in an Optuna trial; returns the value as stored by Optuna."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, self.stored_choices)
        if self.low is None or self.high is None:
            raise ValueError(f"{self.key}: a {self.type} parameter needs low and high")
        if self.type == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), step=self.step, log=self.log
        )

    @property
    def stored_choices(self) -> list:
        return [encode(c) for c in self.choices] if self.encoded else list(self.choices)

    def decode(self, stored: Any) -> Any:
        """The recipe value of a value Optuna stored."""
        return json.loads(stored) if self.encoded else stored

    def stored(self, value: Any, at: str) -> Any:
        """``value`` as Optuna stores it, once it is checked to lie in this distribution."""
        if self.type == "categorical":
            if encode(value) not in {encode(c) for c in self.choices}:
                raise ConfigError(
                    f"{at}: {value!r} is not one of the choices", f"pick {self.describe()}"
                )
            return (
                encode(value)
                if self.encoded
                else next(c for c in self.choices if encode(c) == encode(value))
            )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if (
            not number
            or not self.low <= value <= self.high
            or (self.type == "int" and not float(value).is_integer())
        ):
            raise ConfigError(
                f"{at}: {value!r} is outside the search space", f"pick a value {self.describe()}"
            )
        return int(value) if self.type == "int" else float(value)

    def describe(self) -> str:
        if self.type == "categorical":
            return f"one of {', '.join(json.dumps(c) for c in self.choices)}"
        extra = ", log scale" if self.log else (f", step {self.step}" if self.step else "")
        return f"{self.type} in [{self.low}, {self.high}]{extra}"

    def samples(self) -> list:
        """Values that, together, exercise every corner a model build can fail on."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]


@dataclass
class Space:
    params: list[Param] = field(default_factory=list)
    source: str = ""

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def by_key(self, key: str) -> Param:
        return next(p for p in self.params if p.key == key)

    def suggest(self, trial) -> dict[str, Any]:
        """Draw every parameter; returns recipe values by key."""
        return {p.key: p.decode(p.suggest(trial)) for p in self.params}

    def decode(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Recipe values from the parameters Optuna stored for a trial."""
        return {p.key: p.decode(stored[p.key]) for p in self.params if p.key in stored}

    def stored_point(self, point: Any, where: str) -> dict[str, Any]:
        """A trial's parameters (recipe values by key, some or all) as Optuna stores them,
        checked against the space: ``replab tune --enqueue`` runs such points first."""
        if not isinstance(point, dict) or not point:
            raise ConfigError(
                f"{where} must be a mapping of space keys to values, got {point!r}",
                "write e.g. {trainer.optimizer.lr: 0.001, model.encoder.latent_dim: 32}",
            )
        stripped = {",".join(o.strip() for o in str(k).split(",")): v for k, v in point.items()}
        if len(stripped) < len(point):
            raise ConfigError(
                f"{where} gives a key twice ({', '.join(map(repr, point))})",
                "give each space key once (spaces around a key are ignored)",
            )
        point = stripped
        unknown = [str(k) for k in point if k not in self.keys]
        if unknown:
            raise ConfigError(
                f"{where}: {', '.join(map(repr, unknown))} not in the search space",
                f"use keys of the space: {', '.join(self.keys)}",
            )
        return {
            key: self.by_key(key).stored(value, f"{where}: {key!r}") for key, value in point.items()
        }

    def to_yaml_dict(self) -> dict[str, dict]:
        return {p.key: _entry(p) for p in self.params}


def encode(value: Any) -> str:
    """Canonical JSON text of a categorical choice (same value, same text)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def read_space(path: str | Path) -> Space:
    """Read and check a space file; a bundled one by name (``e2-fashion-space``) works too."""
    from replab import recipes

    raw = read_yaml_file(path, "search space", recipes.bundled_space, recipes.space_names())
    return parse_space(raw, str(path))


def parse_space(raw: Any, where: str = "the search space") -> Space:
    """Check the shape of every entry (not yet whether the keys exist in a
    recipe: see ``check_space``)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(
            f"{where} must be a non-empty mapping of recipe keys to distributions, "
            f"got {type(raw).__name__ if raw else 'nothing'}",
            FIX,
        )
    params = [_param(str(key), spec, where) for key, spec in raw.items()]
    _refuse_duplicates(params, [str(key) for key in raw], where)
    params.sort(key=lambda p: _depth(p.key))  # stable: a block is set before a key inside it
    return Space(params, where)


def _refuse_duplicates(params: list[Param], written: list[str], where: str) -> None:
    """Two entries (or two keys of one ``a,b`` entry) that name the same recipe key once their
    spaces are stripped: the later would overwrite the earlier's value in every trial, and
    Optuna would keep one of the two parameters."""
    seen: dict[str, str] = {}
    for param, spelling in zip(params, written, strict=True):
        for one in param.key.split(","):
            if one in seen:
                first = seen[one]
                both = (
                    f"{first!r} names it twice"
                    if first == spelling
                    else f"{first!r} and {spelling!r} both name it"
                )
                raise ConfigError(
                    f"{where}: recipe key {one!r} is tuned twice ({both})",
                    "keep one entry per key (spaces around a key are ignored; "
                    "a,b ties two different keys to one value)",
                )
            seen[one] = spelling


def _depth(key: str) -> int:
    return min(one.count(".") for one in key.split(","))


def _param(key: str, spec: Any, where: str) -> Param:
    at = f"{where}: {key!r}"
    if not key or any(
        not part.isidentifier() for one in key.split(",") for part in one.strip().split(".")
    ):
        raise ConfigError(
            f"{at} is not a recipe key path",
            "write keys as in an override, "
            "e.g. trainer.optimizer.lr (or a,b for two keys given one value)",
        )
    key = ",".join(one.strip() for one in key.split(","))
    if not isinstance(spec, dict):
        raise ConfigError(f"{at} must map to a distribution, got {spec!r}", FIX)
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{at} has type {kind!r}", f"use type: {', '.join(TYPES)}")
    allowed = {
        "int": {"type", "low", "high", "step", "log"},
        "float": {"type", "low", "high", "step", "log"},
        "categorical": {"type", "choices"},
    }[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f"{at}: unknown field(s) {', '.join(map(repr, unknown))} for type {kind}",
            f"valid fields: {', '.join(sorted(allowed))}",
        )
    if kind == "categorical":
        return _categorical(key, spec, at)
    return _numeric(key, kind, spec, at)


def _categorical(key: str, spec: dict, at: str) -> Param:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(
            f"{at}: choices must be a non-empty list, got {choices!r}",
            "write e.g. choices: [adam, sgd]",
        )
    encoded = not all(isinstance(c, SCALARS) for c in choices)
    stored = [encode(c) if encoded else c for c in choices]
    if len({encode(c) for c in choices}) != len(choices) or len(set(map(repr, stored))) != len(
        stored
    ):
        raise ConfigError(f"{at}: choices {choices!r} list a value twice", "list each choice once")
    if not encoded and len({type(c) for c in choices if c is not None}) > 1:
        # Optuna compares stored choices by value: 1 and 1.0 and True
        # collide, '1' and 1 confuse the table.
        encoded = True
    return Param(key, "categorical", choices=tuple(choices), encoded=encoded)


def _numeric(key: str, kind: str, spec: dict, at: str) -> Param:
    for name in ("low", "high"):
        value = spec.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(
                f"{at}: {name} must be a finite number, got {value!r}",
                f"give both bounds, e.g. {{type: {kind}, low: 1, high: 10}}",
            )
        if kind == "int" and not float(value).is_integer():
            raise ConfigError(
                f"{at}: {name} must be an integer for type int, got {value!r}",
                "use whole numbers, or type: float",
            )
    low, high = spec["low"], spec["high"]
    if not low < high:
        raise ConfigError(
            f"{at}: low ({low}) must be smaller than high ({high})",
            "swap the bounds, or set the key with an override if it is fixed",
        )
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise ConfigError(
            f"{at}: log must be true or false, got {log!r}",
            "write log: true for a log-uniform draw",
        )
    if log and low <= 0:
        raise ConfigError(
            f"{at}: a log scale needs low > 0, got {low}",
            "raise low above 0 (e.g. 1.0e-6), or drop log: true",
        )
    if step is not None:
        if (
            isinstance(step, bool)
            or not isinstance(step, (int, float))
            or step <= 0
            or (kind == "int" and not float(step).is_integer())
        ):
            raise ConfigError(
                f"{at}: step must be a positive "
                f"{'integer' if kind == 'int' else 'number'}, got {step!r}",
                "drop step, or give e.g. step: 8",
            )
        if log:
            raise ConfigError(f"{at}: step and log cannot be combined", "drop one of them")
    if kind == "int":
        return Param(key, kind, int(low), int(high), int(step) if step else None, log)
    return Param(key, kind, float(low), float(high), float(step) if step else None, log)


def _entry(p: Param) -> dict:
    if p.type == "categorical":
        return {"type": p.type, "choices": list(p.choices)}
    entry = {"type": p.type, "low": p.low, "high": p.high}
    if p.step:
        entry["step"] = p.step
    if p.log:
        entry["log"] = True
    return entry


# --- recipes -----------------------------------------------------------------------------


def set_value(raw: dict, key: str, value: Any) -> None:
    """Set ``key`` (a dotted path) to ``value`` in the raw recipe, creating sections like an
    override.

    The value is placed as is, never re-parsed from text (PyYAML would read 1e-05 as a string).
    """
    apply_override(raw, f"{key}=null")  # the same path checks and errors as an override
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = copy.deepcopy(value)


def trial_config(
    raw: dict, overrides: list[str], values: dict[str, Any], name: str | None = None
) -> dict:
    """The raw recipe of one trial: the recipe, the fixed overrides, then the tuned values."""
    config = copy.deepcopy(raw)
    for override in overrides:
        apply_override(config, override)
    for key in sorted(values, key=_depth):
        # `model.encoder.dropout,model.decoder.dropout`: one value, both keys
        for one in key.split(","):
            set_value(config, one, values[key])
    if name is not None:
        config["name"] = name
    return config


def trial_spec(
    raw: dict, overrides: list[str], values: dict[str, Any], name: str | None = None
) -> ExperimentSpec:
    config = trial_config(raw, overrides, values, name)
    try:
        return validate_spec(config)
    except ConfigError as err:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
        raise ConfigError(f"with {shown}: {err.problem}", err.fix) from None


def check_space(raw: dict, overrides: list[str], space: Space) -> None:
    """Validate the recipe at every bound and every choice, and build its model, before any trial.

    Unknown keys in the recipe's sections fail validation; unknown keys of a component (an
    encoder's ``dropuot``) and impossible values (a latent size the decoder cannot take) fail
    when the model is built. Building needs only the dataset's declared shape, not its files.
    """
    base = {p.key: p.samples()[0] for p in space.params}
    configs = [base, {p.key: p.samples()[-1] for p in space.params}]
    for p in space.params:
        configs += [{**base, p.key: v} for v in p.samples()[1:-1]]
    for values in configs:
        spec = trial_spec(raw, overrides, values)
        _build(spec, values)


def _build(spec: ExperimentSpec, values: dict) -> None:
    import torch

    from replab.data import DATASETS, planned_shape
    from replab.tasks import build_task
    from replab.training import check_trainer_spec

    source = DATASETS.get(spec.data.dataset)()
    classes = len(spec.data.classes) if spec.data.classes else len(source.classes)
    d = spec.data
    shape = planned_shape(d.dataset, d.image_size, d.channels)
    try:
        check_trainer_spec(spec.trainer)  # registered optimizer, grouping and schedule names
        # your own data's shape is known only once it is loaded: the first trial checks it
        if shape is not None:
            with torch.random.fork_rng():
                build_task(spec, shape, classes)
    except ReplabError as err:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
        raise type(err)(f"with {shown}: {err.problem}", err.fix) from None
    except (RuntimeError, ValueError, TypeError) as err:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
        raise ConfigError(
            f"the model cannot be built with {shown}: {str(err).splitlines()[0][:300]}",
            "narrow the search space to values this model accepts",
        ) from None
