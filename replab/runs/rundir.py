"""The run folder: naming, status, and what a finished run holds."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from replab.errors import ReplabError
from replab.io import (
    atomic_write_json,
    atomic_write_text,
    process_alive,
    process_record,
    write_error,
)
from replab.recipes import load_spec
from replab.registry import check_code
from replab.runs import schema
from replab.spec import ExperimentSpec, code_names, spec_to_yaml

CONFIG = "config.yaml"
STATUS = "status.json"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
REPORT = "report.html"
LAST = "last.pt"
BEST = "best.pt"
FIGURES = "figures"
HOVER_DATA = "latent-map.json"
HOVER_SPRITE = "latent-map-sprite.png"
TSNE_DATA = "tsne-maps.json"
TRAIL = "reconstruction-trail.npz"


def safe_name(name: str) -> str:
    """A run name usable as a folder name on every OS (the display name stays as given)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def new_run_dir(runs_dir: Path, spec: ExperimentSpec) -> Path:
    """A new folder named by the recipe and the second; runs started in the same second (two
    shells, `--jobs` workers) each claim their own by creating it, ``-2``, ``-3``..."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{safe_name(spec.name)}-{stamp}"
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(base.parent, err) from None
    for i in range(1, 10_000):
        path = base if i == 1 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir()  # atomic: exactly one process creates each name
        except FileExistsError:
            continue
        except OSError as err:
            raise write_error(path, err) from None
        return create_run_dir(path, spec)
    raise write_error(base, FileExistsError(f"{base}-2 ... -9999 all exist"))


def create_run_dir(path: Path, spec: ExperimentSpec) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(path, err) from None
    atomic_write_text(path / CONFIG, spec_to_yaml(spec))
    return path


# the state of a run stopped on purpose (Ctrl-C, SIGTERM): resumable, and not a failure
INTERRUPTED = "interrupted"


def read_status(run_dir: Path) -> str | None:
    """The run's state (running, finished, failed, interrupted), or None where there is no run.

    "running" is what status.json says; a process killed outright (SIGKILL, power cut) cannot
    change it, so ask ``is_alive`` whether the process that wrote it is still there.
    """
    return read_status_record(run_dir).get("state")


def read_status_record(run_dir: Path) -> dict:
    """status.json checked against its schema; {} where there is none."""
    path = Path(run_dir) / STATUS
    if not path.is_file():
        return {}
    return schema.read_checked(
        schema.Status,
        path,
        f"delete {path} (replab writes it again) and run `replab run --resume {run_dir}`",
    )


def set_status(run_dir: Path, state: str, **extra) -> None:
    """Record the run's state with the writing process (pid, host, start time), so a later
    reader can tell a run in progress from one whose process was killed."""
    atomic_write_json(
        run_dir / STATUS,
        {"state": state, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **process_record(), **extra},
    )


def is_alive(record: dict) -> bool:
    """True when the process named in a status record is still running on this host."""
    return process_alive(record)


def describe_state(run_dir: Path) -> str:
    """One phrase for messages: 'finished', 'failed (...)', 'running (pid 12,
    ...)', 'interrupted (...)'."""
    record = read_status_record(run_dir)
    state = record.get("state")
    if state is None:
        return "never started (no status.json)"
    if state == "running":
        who = (
            f"pid {record.get('pid')} on {record.get('host')}"
            if record.get("pid")
            else "an unknown process"
        )
        if is_alive(record):
            return f"still running ({who})"
        return (
            f"interrupted: its process ({who}) is gone, killed or crashed "
            f"since {record.get('time', '?')}"
        )
    if state == "failed":
        return f"failed ({record.get('error', 'no error recorded')})"
    if state == INTERRUPTED:
        return f"was interrupted (Ctrl-C or SIGTERM) at {record.get('time', '?')}"
    return str(state)


def check_not_running(run_dir: Path) -> None:
    """Refuse to write into a run folder whose process is still alive."""
    record = read_status_record(run_dir)
    if record.get("state") == "running" and record.get("pid") != os.getpid() and is_alive(record):
        raise ReplabError(
            f"{run_dir} is {describe_state(run_dir)}",
            "wait for it to finish, or stop that process "
            f"(kill {record.get('pid')}) and then `replab run --resume {run_dir}`",
        )


def open_existing(run_dir: Path, trust_code: bool = False) -> ExperimentSpec:
    """The run's validated spec, to build from: a config.yaml naming code by import path
    (``model.encoder.name: pkg.mod:Enc``) is refused unless ``trust_code`` (or the job
    continues a folder the user trusts, ``registry.saved_folder``): it may come from anyone."""
    spec = read_spec(run_dir)
    check_code(code_names(spec), f"the run folder {str(run_dir)!r}", trust_code)
    return spec


def read_spec(run_dir: Path) -> ExperimentSpec:
    """The run's validated spec, only to read or compare (nothing is imported: validating a
    spec imports nothing); ``open_existing`` before building anything from it."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReplabError(
            f"run folder {str(run_dir)!r} does not exist",
            "pass a folder written by `replab run`, e.g. runs/<name>-<timestamp>",
        )
    if not (run_dir / CONFIG).is_file():
        raise ReplabError(
            f"{str(run_dir)!r} is not a replab run folder (no {CONFIG})",
            "pass a folder written by `replab run`, e.g. runs/<name>-<timestamp>",
        )
    return load_spec(run_dir / CONFIG)


# Metric names older folders wrote, by the prefix that names the same thing now (docs/metrics.md):
# `replab analyze` called its probes probe_mlp and probe_linear before they took a run's names.
LEGACY_PREFIXES = {"probe_mlp.": "probe.", "probe_linear.": "linear_probe."}


def metric_name(key: str) -> str:
    """A metric's one name (``val.loss``) from an epoch record's key (``val_loss``, the
    metrics.jsonl spelling) or an older folder's (``probe_mlp.test_accuracy``)."""
    for old, new in LEGACY_PREFIXES.items():
        if key.startswith(old):
            return new + key[len(old) :]
    split, sep, rest = key.partition("_")
    return f"{split}.{rest}" if sep and split in ("train", "val", "test") else key


def current_metrics(metrics: dict) -> dict:
    """``metrics`` under today's names: an old folder's summary reads like a new one's."""
    return {
        (metric_name(k) if k.startswith(tuple(LEGACY_PREFIXES)) else k): v
        for k, v in metrics.items()
    }


def read_summary(run_dir: Path) -> dict:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        if not (Path(run_dir) / CONFIG).is_file():
            raise ReplabError(
                f"{str(run_dir)!r} is not a replab run folder (no {CONFIG})",
                "pass a folder written by `replab run`",
            )
        raise ReplabError(
            f"{str(run_dir)!r} has no {SUMMARY}: "
            f"the run has not finished; it is {describe_state(run_dir)}",
            f"finish it with `replab run --resume {run_dir}`, or pass a finished run folder",
        )
    fix = f"restore the file, or rerun the experiment (`replab run {Path(run_dir) / CONFIG}`)"
    summary = schema.read_json(path, fix)
    if not isinstance(summary, dict) or not isinstance(summary.get("metrics"), dict):
        raise ReplabError(f"{path} is not a replab run summary (no metrics)", fix)
    schema.check(schema.Summary, summary, path, fix)
    return {**summary, "metrics": current_metrics(summary["metrics"])}


def read_metrics(run_dir: Path) -> list[dict]:
    """The per-epoch records; a torn last line (a kill mid-append) is skipped, anything else
    that is not an epoch record is an error naming the line."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    fix = f"delete {path}: `replab run --resume {run_dir}` rewrites it from last.pt"
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ReplabError(f"{path} is not UTF-8 text (byte offset {err.start})", fix) from None
    except OSError as err:
        raise ReplabError(f"cannot read {path}: {err.strerror or err}", fix) from None
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            if number == len(lines):
                continue  # torn by a kill; the checkpoint's history has the epoch
            raise ReplabError(f"{path} line {number} is not valid JSON", fix) from None
        schema.check(schema.EpochRecord, record, Path(f"{path} line {number}"), fix)
        records.append(record)
    return records
