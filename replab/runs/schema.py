"""What a run, sweep, study or tune folder may hold, checked before anything is used.

A run folder is input like any other: it may have been edited, damaged, or written by someone
else to make ``replab report`` or ``replab compare`` read a file elsewhere. Every JSON file read
back goes through ``read_json`` (size, encoding, syntax) and one of the schemas below (types,
keys, shapes), and every path a file names goes through ``contained`` (symlinks resolved, it
must stay inside its folder). Each refusal is one ReplabError naming the file, the key and the
fix. Extra keys are allowed, so a newer replab's folders still read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from replab.errors import ReplabError

# the largest JSON file replab writes into a folder is a t-SNE map of the test split (a few MB)
MAX_JSON_BYTES = 64 << 20


class _Schema(BaseModel):
    # strict: "0.5" is not a number and 1 is not a string; extra keys: newer folders still read
    model_config = ConfigDict(strict=True, extra="allow")


Number = float | int | None  # a metric that could not be computed is null
# JSON has no tuples, and strict mode takes only a tuple for one: fixed-length lists instead
Pair = Annotated[list[float | int], Field(min_length=2, max_length=2)]
Triple = Annotated[list[float | int], Field(min_length=3, max_length=3)]


class Figure(_Schema):
    name: str
    file: str


class Summary(_Schema):
    name: str
    metrics: dict[str, Number]
    figures: list[Figure] = []
    reference: dict[str, Number] | None = None
    timings: dict[str, float | int] = {}
    epochs: int | None = None
    seed: int | None = None
    data: str = ""
    description: str | None = None
    per_class: dict[str, dict[str, Number]] | None = None
    parameters: dict[str, int] | None = None


class Status(_Schema):
    state: str
    pid: int | None = None
    host: str | None = None
    pid_start: int | None = None
    time: str | None = None
    error: str | None = None


class EpochRecord(_Schema):
    epoch: int = Field(ge=1)


class HoverMap(_Schema):
    points: list[Triple]
    classes: list[str]
    cols: int = Field(ge=1, le=10_000)
    tile: Annotated[list[int], Field(min_length=2, max_length=2)]


class TsneSpace(_Schema):
    name: str
    points: list[Pair]
    scores: dict[str, Number | str] = {}  # scores and how they were measured ("metric")


class TsneMaps(_Schema):
    labels: list[int]
    classes: list[str]
    spaces: list[TsneSpace]


class StudySettings(_Schema):
    study: str
    params: dict[str, Any] = {}
    quick: bool = False
    seeds: list[int] = Field(min_length=1, max_length=100)
    data_root: str | None = None
    overrides: list[str] = []


def read_json(path: Path, fix: str) -> Any:
    """The parsed JSON of ``path``: a clear error when it is too large, not UTF-8 or not JSON."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ReplabError(f"{path} is larger than {MAX_JSON_BYTES >> 20} MiB", fix)
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ReplabError(f"{path} is not UTF-8 text (byte offset {err.start})", fix) from None
    except json.JSONDecodeError as err:
        raise ReplabError(f"{path} is not valid JSON ({err})", fix) from None
    except RecursionError:
        raise ReplabError(f"{path} is nested too deeply to be a replab file", fix) from None
    except (OSError, ValueError) as err:
        raise ReplabError(
            f"cannot read {path}: {getattr(err, 'strerror', None) or err}", fix
        ) from None


def check(schema: type[_Schema], data: Any, path: Path, fix: str) -> Any:
    """``data`` (returned as it is) when it fits ``schema``; else one error naming the first bad
    key of ``path``."""
    try:
        schema.model_validate(data)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "the top level"
        got = repr(first.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        raise ReplabError(
            f"{path} is not a valid {schema.__name__.lower()} file: "
            f"{key}: {first['msg'].lower()} (got {got})",
            fix,
        ) from None
    return data


def read_checked(schema: type[_Schema], path: Path, fix: str) -> Any:
    return check(schema, read_json(path, fix), path, fix)


def contained(folder: Path, name: str, named_by: Path, key: str) -> Path:
    """``folder / name`` with symlinks resolved, refused unless it stays inside ``folder``.

    ``named_by`` and ``key`` say which file named the path (for the error): a summary.json whose
    figure is ``../../../etc/shadow`` must not make a report embed that file.
    """
    fix = "restore the file from the run, or rerun the experiment to write it again"
    try:
        root = Path(folder).resolve()
        target = (Path(folder) / name).resolve()
    except (OSError, ValueError, RuntimeError) as err:  # a NUL, a symlink loop
        raise ReplabError(
            f"{named_by}: {key} names {name!r}, which cannot be read ({err})", fix
        ) from None
    if not target.is_relative_to(root):
        raise ReplabError(
            f"{named_by}: {key} names {name!r}, which lies outside {folder}; "
            "replab reads only files inside the folder",
            fix,
        )
    return target
