"""replab's jobs as Python functions: what ``replab run|study|sweep|tune`` do, for notebooks.

The command line is a thin layer over these::

    import replab.api as rl
    run = rl.run("digits-autoencoder", "trainer.epochs=5")
    run.metrics["probe.test_accuracy"], run.report
    again = rl.load(run.dir)               # a finished run folder, written by either

Every function validates its arguments before any folder is created, and raises
``replab.errors.ReplabError`` (problem and fix) on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from replab.errors import ReplabError
from replab.recipes import DEFAULT, load_spec, read_recipe
from replab.reporting.study_report import StudyReport
from replab.runs import rundir
from replab.runs.experiment import run_experiment
from replab.search.sweep import parse_axis, run_sweep
from replab.search.tune import TuneResult, resume_tune, start_tune
from replab.spec import ExperimentSpec
from replab.studies.runner import run_study
from replab.training import distributed, resolve_device

Log = Callable[[str], None]


def default_runs_dir() -> Path:
    return Path(os.environ.get("REPLAB_RUNS", "runs"))


@dataclass(frozen=True)
class Run:
    """A finished run folder: its resolved recipe, summary, per-epoch history and report."""

    dir: Path

    @property
    def spec(self) -> ExperimentSpec:
        return rundir.open_existing(self.dir)

    @property
    def summary(self) -> dict:
        return rundir.read_summary(self.dir)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.summary["metrics"])

    @property
    def history(self) -> list[dict]:
        return rundir.read_metrics(self.dir)

    @property
    def report(self) -> Path:
        return self.dir / rundir.REPORT


def load(run_dir: str | Path) -> Run:
    """A finished run folder (from ``run`` or the command line); errors say if it is not one."""
    run = Run(Path(run_dir))
    run.summary  # noqa: B018 - reads and checks summary.json now, not on first use
    return run


def run_spec(
    recipe: str | Path | None = None,
    overrides: Sequence[str] = (),
    data_dir: str | Path | None = None,
) -> ExperimentSpec:
    """The validated spec ``run`` would train: a recipe (file or bundled name; None: the
    default job) with ``KEY=VALUE`` overrides and, optionally, the dataset folder."""
    overrides = [*overrides, *([f"data.root={data_dir}"] if data_dir else [])]
    if recipe is None:
        return load_spec(None, overrides, base=read_recipe(DEFAULT))
    return load_spec(recipe, overrides)


def run(
    recipe: str | Path | None = None,
    *overrides: str,
    data_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    resume: str | Path | None = None,
    log: Log | None = None,
) -> Run | None:
    """Train, evaluate and report one recipe (``replab run``); returns the finished run.

    ``resume`` continues an interrupted run folder exactly as it was configured. Under
    ``torchrun`` every process calls this; rank 0 alone writes the folder, and the other ranks
    of a new run get None.
    """
    if resume is not None:
        if recipe is not None or overrides or data_dir:
            raise ReplabError(
                "resume continues a run exactly as it was configured",
                "drop the recipe and overrides, or start a new run without resume",
            )
        spec = rundir.open_existing(Path(resume))
    else:
        spec = run_spec(recipe, overrides, data_dir)
    with distributed.session(resolve_device(spec.data.device).type):
        result = run_experiment(
            spec,
            runs_dir=Path(runs_dir or default_runs_dir()),
            resume=Path(resume) if resume else None,
            log=log or _quiet,
        )
    # Under torchrun, ranks > 0 of a new run never learn the folder rank 0 creates.
    return Run(result.run_dir) if result.run_dir is not None else None


def study(
    name: str | None = None,
    quick: bool = False,
    seeds: int | None = None,
    options: dict | None = None,
    overrides: Sequence[str] = (),
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: str | Path | None = None,
    log: Log | None = None,
) -> tuple[Path, StudyReport, float]:
    """Run (or ``resume``) a whole study (``replab study``): its folder, report and wall seconds.

    ``options`` are the study's own settings (``{"dataset": "cifar10"}`` for study a;
    ``replab study --help`` lists each study's); ``overrides`` are ``PART:KEY=VALUE``.
    """
    if resume is not None and (name or options or quick or overrides):
        raise ReplabError(
            "resume continues a study exactly as it was started",
            "pass only the study folder to resume (and seeds to add seeds)",
        )
    if resume is None and not name:
        raise ReplabError(
            "which study? none was named", "name one, e.g. study('a') or study('b', quick=True)"
        )
    return run_study(
        name,
        dict(options or {}),
        quick,
        seeds,
        Path(runs_dir or default_runs_dir()),
        str(data_dir) if data_dir else None,
        Path(resume) if resume else None,
        list(overrides),
        log=log or _quiet,
    )


def sweep(
    recipe: str | Path,
    over: Sequence[str],
    *overrides: str,
    runs_dir: str | Path | None = None,
    log: Log | None = None,
) -> Path:
    """One run per value of each ``over`` key (``KEY=[V1,V2]``; several
    make a grid); the study folder."""
    axes = [parse_axis(text) for text in over]
    return run_sweep(
        Path(recipe), axes, list(overrides), Path(runs_dir or default_runs_dir()), log=log or _quiet
    )


def tune(
    recipe: str | Path | None = None,
    space: str | Path | None = None,
    trials: int | None = None,
    *overrides: str,
    resume: str | Path | None = None,
    runs_dir: str | Path | None = None,
    study_dir: str | Path | None = None,
    storage: str | None = None,
    log: Log | None = None,
    **options,
) -> TuneResult:
    """An Optuna search over ``space`` (``replab tune``), or ``resume`` one; see docs/tuning.md.

    ``options``: metric, direction, study_name, seed, prune, prune_startup, prune_warmup,
    enqueue (a list of points), as the command's flags.
    """
    log = log or _quiet
    if resume is not None:
        return resume_tune(Path(resume), trials, storage, log=log)
    if not recipe or not space or trials is None:
        raise ReplabError(
            "tune needs a recipe, a search space and a trial count",
            "e.g. tune('digits-autoencoder', 'space.yaml', 20)",
        )
    return start_tune(
        recipe,
        space,
        trials,
        list(overrides),
        Path(runs_dir or default_runs_dir()),
        Path(study_dir) if study_dir else None,
        log=log,
        storage=storage,
        **options,
    )


def _quiet(message: str) -> None:
    """The default log of the Python API: nothing (the command line passes a printer)."""
