"""Sweeps: any recipe key over a list of values, each value one run, in one study folder.

``replab sweep RECIPE --over model.encoder.latent_dim=[2,8,32]`` trains one run per value
(several ``--over`` make a grid; ``--over a.x,b.y=[...]`` sets two keys to the same value),
then writes the comparison table and one plot per metric against the swept value, so a
study never needs a hand-written loop. Each point has a fixed folder name, so running a
sweep again in the same folder reuses finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from replab.errors import ConfigError
from replab.io import Log, atomic_write_bytes, atomic_write_json, folder_lock, write_error
from replab.recipes import read_recipe
from replab.reporting import figures
from replab.runs import rundir
from replab.runs.lifecycle import run_or_reuse
from replab.runs.pool import check_jobs, pooled
from replab.runs.rebuild import compare_runs
from replab.runs.tracking import parent_run
from replab.spec import ExperimentSpec, apply_override, parse_yaml, validate_spec, with_overrides

SEED = "seed"


@dataclass
class Axis:
    keys: list[str]
    values: list

    @property
    def key(self) -> str:
        return ",".join(self.keys)


@dataclass
class Point:
    """One combination of the axes' values, averaged over seeds."""

    values: dict
    runs: list[str] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, metric: str) -> float | None:
        return mean_and_std(self.metrics.get(metric, []))[0]

    def reported_mean(self, metric: str) -> float:
        """``mean(metric)`` of a metric every run reports (KeyError if none did)."""
        mean = self.mean(metric)
        if mean is None:
            raise KeyError(f"no run of {self.values} reported {metric!r}")
        return mean

    def std(self, metric: str) -> float:
        return mean_and_std(self.metrics.get(metric, []))[1] or 0.0


def mean_and_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation over seeds; None where there are too few values."""
    mean = statistics.fmean(values) if values else None
    return mean, statistics.stdev(values) if len(values) > 1 else None


def parse_axis(text: str) -> Axis:
    keys, sep, values = text.partition("=")
    parsed = parse_yaml(values, f"the values of --over {keys!r}") if sep else None
    if not sep or not isinstance(parsed, list) or not parsed:
        raise ConfigError(
            f"--over {text!r} is not of the form key.path=[v1,v2,...]",
            "write e.g. --over model.encoder.latent_dim=[2,8,32]",
        )
    return Axis([k.strip() for k in keys.split(",")], parsed)


def grid(raw: dict, axes: list[Axis], overrides: list[str]) -> list[tuple[dict, ExperimentSpec]]:
    """Every combination of the axes' values as (assignment, validated spec); all
    checked before any training."""
    check_axes(axes)
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        assignment = dict(zip((a.key for a in axes), combo, strict=True))
        config = with_overrides(raw, overrides)
        for axis, value in zip(axes, combo, strict=True):
            for key in axis.keys:
                # JSON is YAML: lists, numbers, null survive
                apply_override(config, f"{key}={json.dumps(value)}")
        config["name"] = f"{config.get('name', 'experiment')}-{point_name(assignment)}"
        points.append((assignment, validate_spec(config)))
    _refuse_shared_folders([a for a, _ in points])
    return points


def check_axes(axes: list[Axis]) -> None:
    """Each key on one axis only, each value once: the later ``--over`` of a key would
    overwrite the earlier's value in every run, and a value given twice trains one folder
    twice (at once, with ``--jobs``)."""
    seen: dict[str, Axis] = {}
    for axis in axes:
        for key in axis.keys:
            if not key:
                raise ConfigError(
                    f"--over {axis.key!r} names an empty key", "write e.g. --over a.x,b.y=[1,2]"
                )
            if key in seen:
                both = (
                    f"--over {axis.key!r} names it twice"
                    if seen[key] is axis
                    else f"--over {seen[key].key!r} and --over {axis.key!r} both set it"
                )
                raise ConfigError(
                    f"the sweep sets {key!r} twice ({both})",
                    f"give {key} one --over with every value, e.g. --over {key}=[v1,v2,v3]",
                )
            seen[key] = axis
        shown = [json.dumps(v, sort_keys=True, default=str) for v in axis.values]
        twice = next((v for i, v in enumerate(shown) if v in shown[:i]), None)
        if twice is not None:
            raise ConfigError(
                f"the values of --over {axis.key} list {twice} twice", "list each value once"
            )


def _refuse_shared_folders(assignments: list[dict]) -> None:
    """Two points whose values differ but whose folder names do not (``a/b`` and ``a_b``)."""
    folders: dict[str, dict] = {}
    for assignment in assignments:
        name = point_name(assignment)
        if name in folders:
            raise ConfigError(
                f"the sweep points {_shown(folders[name])} and {_shown(assignment)} "
                f"would share the run folder {name!r}",
                "give values that differ in letters or digits, not only in punctuation",
            )
        folders[name] = assignment


def point_name(assignment: dict) -> str:
    return rundir.safe_name(
        "-".join(f"{k.split(',')[0].split('.')[-1]}={v}" for k, v in assignment.items())
    )


def run_grid(
    raw: dict, axes: list[Axis], overrides: list[str], out: Path, log: Log = print, pool=None
) -> list[dict]:
    """Train (or reuse) every point of the grid in ``out``; one record per run."""
    return start_grid(raw, axes, overrides, out, log, pool)()


def start_grid(
    raw: dict, axes: list[Axis], overrides: list[str], out: Path, log: Log = print, pool=None
) -> Callable[[], list[dict]]:
    """Start every point of the grid; the returned call waits for them and gives their records.

    Without a ``pool`` the runs are trained here, one after the other, before this returns;
    with one (``--jobs``) they are queued on its worker processes and this returns at once."""
    points = grid(raw, axes, overrides)
    if pool is None:
        records = []
        for i, (assignment, spec) in enumerate(points, 1):
            log(f"sweep run {i}/{len(points)}: " + _shown(assignment))
            summary = run_or_reuse(spec, Path(out) / point_name(assignment), log=log)
            records.append(_record(assignment, summary))
        return lambda: records
    queued = []
    for assignment, spec in points:
        folder = Path(out) / point_name(assignment)
        queued.append((assignment, folder, pool.submit(spec, folder, f"{out.name}/{folder.name}")))
    return lambda: [_record(a, pool.result(f, folder)) for a, folder, f in queued]


def _shown(assignment: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in assignment.items())


def _record(assignment: dict, summary: dict) -> dict:
    return {
        "values": assignment,
        "run": point_name(assignment),
        "metrics": summary["metrics"],
        "seconds": summary["timings"]["total"],
    }


def aggregate(records: list[dict]) -> list[Point]:
    """Records grouped by every axis but the seed: the seeds' values of each metric together."""
    points: dict[str, Point] = {}
    for r in records:
        values = {k: v for k, v in r["values"].items() if k != SEED}
        point = points.setdefault(json.dumps(values, sort_keys=True), Point(values))
        point.runs.append(r["run"])
        for metric, value in r["metrics"].items():
            point.metrics.setdefault(metric, []).append(value)
    return list(points.values())


def run_sweep(
    recipe: Path,
    axes: list[Axis],
    overrides: list[str],
    runs_dir: Path,
    log: Log = print,
    jobs: int = 1,
) -> Path:
    """The sweep in a new study folder; ``jobs`` runs at once in worker processes."""
    check_jobs(jobs)
    raw = read_recipe(recipe)
    swept = {key for axis in axes for key in axis.keys}
    fixed = next((o for o in overrides if o.partition("=")[0].strip() in swept), None)
    if fixed is not None:
        key = fixed.partition("=")[0].strip()
        raise ConfigError(
            f"the override {fixed!r} sets {key}, which an --over sweeps: the sweep would drop it",
            f"leave out {key}=... or add its value to the --over of {key}",
        )
    grid(raw, axes, overrides)  # validate every point before creating anything
    name = rundir.safe_name(raw.get("name", "experiment"))
    study = Path(runs_dir) / f"{name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        study.mkdir(parents=True)
    except OSError as err:
        raise write_error(study, err) from None
    params = {"recipe": str(recipe), "over": [a.__dict__ for a in axes], "overrides": overrides}
    with (
        folder_lock(study, "sweep"),
        parent_run(study, "sweep", name, params, log) as parent,
        pooled(jobs, log) as pool,
    ):
        records = run_grid(raw, axes, overrides, study, log, pool)
        atomic_write_json(
            study / "sweep.json", {"axes": [a.__dict__ for a in axes], "runs": records}
        )
        plots = sweep_plots(
            aggregate(records), [a for a in axes if a.key != SEED], study / rundir.FIGURES
        )
        md, html = compare_runs([study / r["run"] for r in records], study / "study", plots)
        parent.finish(plots, [html, md, study / "sweep.json"])
    return study


def sweep_plots(points: list[Point], axes: list[Axis], folder: Path) -> dict[str, bytes]:
    """One figure per metric: metric (mean ± std over seeds) against the first axis, one
    line per value of the others."""
    if not axes:
        return {}
    first, rest = axes[0], axes[1:]
    metrics = list(dict.fromkeys(m for p in points for m in p.metrics))
    plots = {}
    for metric in metrics:
        series: dict[str, list] = {}
        for p in points:
            label = ", ".join(f"{a.key}={p.values[a.key]}" for a in rest) or metric
            series.setdefault(label, []).append(
                (p.values[first.key], p.mean(metric), p.std(metric))
            )
        png = figures.sweep_plot(series, first.key, metric)
        atomic_write_bytes(Path(folder) / f"{rundir.safe_name(metric)}.png", png)
        plots[f"{metric} vs {first.key}"] = png
    return plots
