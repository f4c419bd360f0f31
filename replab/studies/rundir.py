"""The run folder: naming, status, and what a finished run holds."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from replab.errors import ReplabError
from replab.io import atomic_write_json, atomic_write_text, read_jsonl
from replab.spec import ExperimentSpec, load_spec, spec_to_yaml

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
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{safe_name(spec.name)}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return create_run_dir(path, spec)


def create_run_dir(path: Path, spec: ExperimentSpec) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / CONFIG, spec_to_yaml(spec))
    return path


def read_status(run_dir: Path) -> str | None:
    """The run's state (running, finished, failed), or None where there is no run."""
    path = Path(run_dir) / STATUS
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("state")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None


def set_status(run_dir: Path, state: str, **extra) -> None:
    atomic_write_json(run_dir / STATUS, {"state": state, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})


def open_existing(run_dir: Path) -> ExperimentSpec:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise ReplabError(f"{str(run_dir)!r} is not a replab run folder (no {CONFIG})", "pass a folder written by `replab run`, e.g. runs/<name>-<timestamp>")
    return load_spec(run_dir / CONFIG)


def read_summary(run_dir: Path) -> dict:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise ReplabError(
            f"{str(run_dir)!r} has no {SUMMARY}: the run has not finished",
            f"finish it with `replab run --resume {run_dir}`, or pass a finished run folder",
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReplabError(f"{path} is not valid JSON ({err})", "rerun the experiment or restore the file") from None


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    return read_jsonl(path) if path.exists() else []
