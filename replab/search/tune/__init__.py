"""Hyperparameter search with Optuna: `replab tune RECIPE --space SPACE.yaml --trials N`.

Every trial is an ordinary replab run in ``STUDY_DIR/trial-0007/`` (config.yaml, metrics,
report.html) with the trial's values applied on top of the recipe and the fixed overrides.
The study lives in an Optuna storage: ``STUDY_DIR/optuna.db`` (SQLite) unless ``--storage``
names another (PostgreSQL for workers on several machines). The sampler is TPE, seeded from
the settings and the trial count so that a resumed or joined study never replays draws; the
pruner is the median rule on the per-epoch validation metric.

Exactly N trials finish (complete or pruned) however many workers share the study: each
worker asks for a trial only while fewer than N are finished or running, and gives a trial
back at once when a faster worker filled the last slot; with nothing left to ask it waits
for the other workers' trials instead of stopping. Trials left running by a killed worker
(same host: its process is gone; another host: no epoch heartbeat for ``STALE_SECONDS``) are
marked failed by the next worker that looks (at start, before each trial and while waiting),
and their parameters queued again; the new trial continues the old trial's run folder from
its last checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from replab.errors import ConfigError, ReplabError
from replab.io import Log, atomic_write_text, write_error
from replab.recipes import read_recipe
from replab.runs import rundir
from replab.runs.pool import check_jobs
from replab.runs.tracking import folder_figures, parent_run
from replab.search.space import check_space, parse_space, read_space
from replab.search.tune.settings import (
    BEST_YAML,
    SPACE_YAML,
    TRIALS_CSV,
    TUNE_JSON,
    TuneResult,
    TuneSettings,
    check_settings,
    load_settings,
    save_settings,
)
from replab.search.tune.storage import check_storage
from replab.search.tune.workers import run_tune_jobs
from replab.spec import with_overrides

__all__ = ["TUNE_JSON", "TuneResult", "TuneSettings", "load_settings", "resume_tune", "start_tune"]

# --- starting and resuming ---------------------------------------------------------------


def start_tune(
    recipe: str | Path,
    space_path: str | Path,
    trials: int,
    overrides: list[str],
    runs_dir: Path,
    study_dir: Path | None = None,
    log: Log = print,
    jobs: int = 1,
    **options,
) -> TuneResult:
    """Check everything, create the study folder, then search (``jobs`` local workers)."""
    check_jobs(jobs)
    raw = read_recipe(recipe)
    space = read_space(space_path)
    settings = TuneSettings(
        recipe=raw,
        recipe_source=str(recipe),
        space=space.to_yaml_dict(),
        trials=trials,
        overrides=list(overrides),
        **options,
    )
    check_settings(settings)
    check_space(raw, settings.overrides, space)  # before any folder or trial exists
    settings.enqueued(space)  # checked here, before any folder exists
    if settings.metric.startswith("val.") and (
        with_overrides(raw, settings.overrides).get("data") or {}
    ).get("refit"):
        raise ConfigError(
            "the recipe sets data.refit, "
            "so its validation images are trained on and val metrics cannot rank trials",
            "tune without data.refit (add data.refit=false), then refit the best recipe",
        )
    if study_dir is None:
        study_dir = (
            Path(runs_dir)
            / f"{rundir.safe_name(settings.name)}-tune-{time.strftime('%Y%m%d-%H%M%S')}"
        )
    study_dir = Path(study_dir)
    if (study_dir / TUNE_JSON).exists():
        raise ReplabError(
            f"{study_dir} already holds a study",
            f"continue it with `replab tune --resume {study_dir}`, or pick a new --study-dir",
        )
    if study_dir.exists() and any(study_dir.iterdir()):
        raise ReplabError(
            f"{study_dir} exists and is not empty",
            "pick a new --study-dir (or leave it out for runs/<name>-tune-<time>)",
        )
    settings.study_name = settings.study_name or study_dir.name
    check_storage(settings)  # a --storage that fails leaves no study folder behind
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a --runs-dir that is a file, or not writable
        raise write_error(study_dir, err) from None
    atomic_write_text(study_dir / SPACE_YAML, yaml.safe_dump(settings.space, sort_keys=False))
    save_settings(study_dir, settings)
    return _resumable(study_dir, settings, log, jobs)


def resume_tune(
    study_dir: Path,
    trials: int | None = None,
    storage: str | None = None,
    log: Log = print,
    jobs: int = 1,
    trust_code: bool = False,
) -> TuneResult:
    """Continue (or join, as ``jobs`` more workers) the study in ``study_dir``.

    The folder is data: code that its tune.json names by import path (in the recipe, the
    overrides or any choice of the space) is refused unless ``trust_code``."""
    from replab.registry import check_code, saved_folder

    check_jobs(jobs)
    settings = load_settings(study_dir)
    where = f"the tune folder {str(study_dir)!r}"
    check_code(tune_code(settings, f"{study_dir / TUNE_JSON}"), where, trust_code)
    if trials is not None:
        settings.trials = trials
    if storage is not None:
        settings.storage = storage
    if settings.storage and "***" in settings.storage:
        raise ConfigError(
            f"the storage of {study_dir} was saved without its password ({settings.storage})",
            "pass the full URL again with --storage",
        )
    check_settings(settings)
    check_space(
        settings.recipe, settings.overrides, parse_space(settings.space, f"{study_dir / TUNE_JSON}")
    )
    save_settings(study_dir, settings)
    with saved_folder(where, trust_code):
        return _resumable(Path(study_dir), settings, log, jobs)


def tune_code(settings: TuneSettings, where: str = "tune.json") -> list[str]:
    """``key=package.module:Name`` for what a saved study's trials would import: the recipe
    with its overrides, with every value the space may set (each choice, each bound) and
    each enqueued point."""
    from replab.search.space import trial_config
    from replab.spec import code_names

    points: list[dict] = [{}, *(p for p in settings.enqueue if isinstance(p, dict))]
    for param in parse_space(settings.space, where).params:
        points += [{param.key: value} for value in param.samples()]
    found: list[str] = []
    for point in points:
        names = code_names(trial_config(settings.recipe, settings.overrides, point))
        found += [n for n in names if n not in found]
    return found


def _resumable(study_dir: Path, settings: TuneSettings, log: Log, jobs: int = 1) -> TuneResult:
    params = {
        "recipe": settings.recipe_source,
        "overrides": settings.overrides,
        "space": settings.space,
        "metric": settings.metric,
        "direction": settings.direction,
        "trials": settings.trials,
    }
    try:
        with parent_run(study_dir, "tune", settings.study_name, params, log) as parent:
            result = run_tune_jobs(study_dir, settings, jobs, log)
            parent.finish(
                folder_figures(study_dir / rundir.FIGURES),
                [study_dir / name for name in ("tune.html", BEST_YAML, TRIALS_CSV)],
            )
            return result
    except KeyboardInterrupt as err:
        # Ctrl-C: the study, not the trial's run folder, is what to continue
        err.replab_resume = (  # type: ignore[attr-defined]
            str(study_dir),
            f"replab tune --resume {study_dir}",
        )
        raise
