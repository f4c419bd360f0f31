"""Sweeps: any recipe key over a list of values, each value one run, in one study folder.

``replab sweep RECIPE --over model.encoder.latent_dim=[2,8,32]`` trains one run per value
(several ``--over`` make a grid), then writes the study's comparison table and one plot per
metric against the swept value, so a study never needs a hand-written loop.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

from replab.errors import ConfigError
from replab.io import atomic_write_bytes, atomic_write_json
from replab.reporting import figures
from replab.spec import apply_override, parse_yaml, read_recipe, validate_spec
from replab.studies import rundir
from replab.studies.experiment import run_experiment
from replab.studies.rebuild import compare_runs


@dataclass
class Axis:
    key: str
    values: list


def parse_axis(text: str) -> Axis:
    key, sep, values = text.partition("=")
    parsed = parse_yaml(values, f"the values of --over {key!r}") if sep else None
    if not sep or not isinstance(parsed, list) or not parsed:
        raise ConfigError(f"--over {text!r} is not of the form key.path=[v1,v2,...]", "write e.g. --over model.encoder.latent_dim=[2,8,32]")
    return Axis(key.strip(), parsed)


def grid(raw: dict, axes: list[Axis], overrides: list[str]) -> list[tuple[dict, dict]]:
    """Every combination of the axes' values as (assignment, validated spec); all checked before any training."""
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        assignment = dict(zip((a.key for a in axes), combo, strict=True))
        config = copy.deepcopy(raw)
        for override in overrides:
            apply_override(config, override)
        for key, value in assignment.items():
            apply_override(config, f"{key}={_yaml_value(value)}")
        config["name"] = f"{config.get('name', 'experiment')}-" + "-".join(f"{k.split('.')[-1]}={v}" for k, v in assignment.items())
        points.append((assignment, validate_spec(config)))
    return points


def run_sweep(recipe: Path, axes: list[Axis], overrides: list[str], runs_dir: Path, log=print) -> Path:
    raw = read_recipe(recipe)
    points = grid(raw, axes, overrides)
    study = Path(runs_dir) / f"{rundir.safe_name(raw.get('name', 'experiment'))}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    study.mkdir(parents=True)
    records = []
    for i, (assignment, spec) in enumerate(points, 1):
        log(f"sweep run {i}/{len(points)}: " + ", ".join(f"{k}={v}" for k, v in assignment.items()))
        result = run_experiment(spec, runs_dir=study, log=log)
        records.append({"values": assignment, "run": result.run_dir.name, "metrics": result.summary["metrics"]})
        atomic_write_json(study / "sweep.json", {"axes": [a.__dict__ for a in axes], "runs": records})
    plots = _plots(study, axes, records)
    compare_runs([study / r["run"] for r in records], study / "study", plots)
    return study


def _plots(study: Path, axes: list[Axis], records: list[dict]) -> dict[str, bytes]:
    """One figure per metric: metric against the first axis, one line per value of the others."""
    first, rest = axes[0], axes[1:]
    metrics = list(dict.fromkeys(m for r in records for m in r["metrics"]))
    plots = {}
    for metric in metrics:
        series: dict[str, list] = {}
        for r in records:
            label = ", ".join(f"{a.key}={r['values'][a.key]}" for a in rest) or metric
            series.setdefault(label, []).append((r["values"][first.key], r["metrics"].get(metric)))
        png = figures.sweep_plot(series, first.key, metric)
        atomic_write_bytes(study / rundir.FIGURES / f"{rundir.safe_name(metric)}.png", png)
        plots[f"{metric} vs {first.key}"] = png
    return plots


def _yaml_value(value) -> str:
    return json.dumps(value)  # JSON is YAML: lists, numbers, strings and null survive the round trip

