"""One trial: its values applied to the recipe, run as an ordinary run folder, pruned by epoch."""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

from replab.errors import ConfigError, DivergenceError, ReplabError
from replab.io import Log
from replab.runs import rundir
from replab.runs.lifecycle import run_experiment
from replab.search.space import (
    Space,
    trial_spec,
)
from replab.search.tune.outputs import show_value
from replab.search.tune.settings import TuneSettings
from replab.spec import same_training


class Pruned(Exception):
    """Raised by the epoch hook; the run folder is left ``pruned`` (not ``failed``)."""

    run_state = "pruned"


def run_trial(study, trial, space: Space, settings: TuneSettings, study_dir: Path, log: Log):
    """One trial as one replab run; returns the state it was told with."""
    from optuna.trial import TrialState

    values = space.suggest(trial)
    number = trial.number
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("heartbeat", time.time())
    tlog = lambda m: log(f"[trial {number}] {m}")  # noqa: E731
    tlog(
        "start: "
        + ", ".join(f"{k}={show_value(v)}" for k, v in values.items())
        + (
            f" (again: trial {trial.user_attrs['retry_of']} was interrupted)"
            if "retry_of" in trial.user_attrs
            else ""
        )
    )
    try:
        spec, run_dir, resume = _trial_run(
            settings, values, number, trial.user_attrs.get("run_dir"), study_dir
        )
    except ConfigError as err:  # values that do not validate together: this trial only
        return _invalid(study, trial, err, tlog)
    trial.set_user_attr("run_dir", str(run_dir.resolve()))
    reported: set[int] = set()
    hook = _epoch_hook(trial, settings, reported)
    try:
        if resume == "reuse":
            summary = rundir.read_summary(run_dir)
            tlog(f"reusing the finished run {run_dir}")
        else:
            summary = run_experiment(
                spec,
                resume=run_dir if resume else None,
                run_dir=None if resume else run_dir,
                log=tlog,
                hooks=[hook],
            ).summary
    except Pruned as err:
        trial.set_user_attr("pruned", str(err))
        study.tell(trial, state=TrialState.PRUNED)
        tlog(str(err))
        return TrialState.PRUNED
    except DivergenceError as err:
        trial.set_user_attr("error", err.message)
        study.tell(trial, state=TrialState.FAIL)
        tlog(f"failed: {err.message}")
        return TrialState.FAIL
    except ConfigError as err:  # a model these values cannot build: the search goes on
        return _invalid(study, trial, err, tlog, run_dir)
    except ReplabError as err:
        trial.set_user_attr("error", err.message)
        study.tell(trial, state=TrialState.FAIL)
        raise
    except BaseException as err:
        # Ctrl-C or a bug: the trial is failed and queued again for --resume
        trial.set_user_attr("error", f"{type(err).__name__}: {err}")
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(
            dict(trial.params), user_attrs={"retry_of": number, "run_dir": str(run_dir.resolve())}
        )
        raise
    _report_history(trial, rundir.read_metrics(run_dir), settings, reported)
    value = summary["metrics"].get(settings.metric)
    if value is None:
        study.tell(trial, state=TrialState.FAIL)
        raise ConfigError(
            f"--metric {settings.metric!r} is not in the run summary",
            f"pick one of: {', '.join(summary['metrics'])}",
        )
    if not math.isfinite(value):
        trial.set_user_attr("error", f"{settings.metric} is {value}")
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    study.tell(trial, value)
    return TrialState.COMPLETE


def _invalid(study, trial, err: ConfigError, tlog, run_dir: Path | None = None):
    """Fail the one trial whose combination of values is invalid, its reason recorded (the
    table's note), and let the search go on: the space's corners were checked before any
    trial, but not every combination of its values."""
    from optuna.trial import TrialState

    if run_dir is not None and not run_dir.exists():  # refused before training: no folder left
        trial.set_user_attr("run_dir", "")
    # the problem only (a whole-recipe check quotes the recipe): the note is one table cell
    reason = err.problem if len(err.problem) <= 300 else err.problem[:299] + "\u2026"
    trial.set_user_attr("error", f"invalid combination: {reason}")
    study.tell(trial, state=TrialState.FAIL)
    tlog(f"failed, its values do not fit together: {reason}")
    return TrialState.FAIL


def _trial_run(
    settings: TuneSettings, values: dict, number: int, previous: str | None, study_dir: Path
):
    """The trial's spec and run folder; an interrupted trial's folder is continued (or reused)."""
    if previous and Path(previous).is_dir() and (Path(previous) / rundir.CONFIG).is_file():
        old = Path(previous)
        try:
            spec = trial_spec(
                settings.recipe, settings.overrides, values, rundir.read_spec(old).name
            )
            if same_training(rundir.read_spec(old), spec):
                finished = (
                    rundir.read_status(old) == "finished" and (old / rundir.SUMMARY).is_file()
                )
                return spec, old, "reuse" if finished else (old / rundir.LAST).is_file()
        except ReplabError:
            pass
    run_dir = study_dir / f"trial-{number:04d}"
    return (
        trial_spec(
            settings.recipe, settings.overrides, values, f"{settings.name}-trial-{number:04d}"
        ),
        run_dir,
        False,
    )


def _epoch_hook(trial, settings: TuneSettings, reported: set[int]):
    def hook(trainer, record: dict) -> None:
        trial.set_user_attr("heartbeat", time.time())
        _report_history(trial, trainer.history, settings, reported)
        value = record.get(settings.epoch_key)
        if settings.prune and value is not None and trial.should_prune():
            raise Pruned(
                f"pruned after epoch {record['epoch']}: "
                f"{settings.epoch_key} {value:.5g} is worse than the median of earlier trials"
            )

    return hook


def _report_history(trial, history: list[dict], settings: TuneSettings, reported: set[int]) -> None:
    """Report every epoch's metric not yet reported (a resumed run's earlier epochs included)."""
    for r in history:
        epoch, value = r.get("epoch"), r.get(settings.epoch_key)
        if epoch is None or value is None or epoch in reported or not math.isfinite(value):
            continue
        trial.report(float(value), int(epoch))
        reported.add(epoch)
