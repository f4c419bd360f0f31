"""What a tune folder shows: trials.csv, best.yaml, importances, tune.html."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

from replab.io import Log, atomic_write_bytes, atomic_write_text
from replab.runs import rundir
from replab.search.space import (
    Space,
    trial_spec,
)
from replab.search.tune.settings import (
    BEST_YAML,
    DB,
    SURPLUS,
    TRIALS_CSV,
    TuneResult,
    TuneSettings,
    masked_url,
)
from replab.spec import ExperimentSpec, spec_to_yaml


def best_trial(study):
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


# --- outputs -----------------------------------------------------------------------------


def trial_rows(study, space: Space) -> list[dict]:
    """Every trial as plain data (the reports never see Optuna)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        start, end = t.datetime_start, t.datetime_complete
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": space.decode(t.params),
                "curve": sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
                "seconds": (end - start).total_seconds() if start and end else None,
                "run_dir": t.user_attrs.get("run_dir", ""),
                "note": _note(t.user_attrs),
            }
        )
    return rows


def _note(attrs: dict) -> str:
    """Why a trial ended as it did, else where its parameters came from."""
    origin = (
        f"retry of trial {attrs['retry_of']}"
        if "retry_of" in attrs
        else "queued by --enqueue"
        if attrs.get("enqueued")
        else ""
    )
    return attrs.get("pruned") or attrs.get("error") or attrs.get(SURPLUS) or origin


def write_tables(study, space: Space, settings: TuneSettings, study_dir: Path) -> None:
    rows = trial_rows(study, space)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["number", "state", settings.metric, *space.keys, "epochs", "seconds", "run_dir", "note"]
    )
    for r in rows:
        writer.writerow(
            [
                r["number"],
                r["state"],
                "" if r["value"] is None else repr(r["value"]),
                *(show_value(r["params"][k]) if k in r["params"] else "" for k in space.keys),
                len(r["curve"]),
                "" if r["seconds"] is None else f"{r['seconds']:.1f}",
                r["run_dir"],
                r["note"],
            ]
        )
    atomic_write_text(study_dir / TRIALS_CSV, buffer.getvalue())
    best = best_trial(study)
    if best is not None:
        atomic_write_text(
            study_dir / BEST_YAML, best_yaml(settings, space, best.number, best.value, best.params)
        )


def best_spec(settings: TuneSettings, space: Space, params: dict) -> ExperimentSpec:
    return trial_spec(
        settings.recipe, settings.overrides, space.decode(params), f"{settings.name}-tuned"
    )


def best_yaml(settings: TuneSettings, space: Space, number: int, value: float, params: dict) -> str:
    values = space.decode(params)
    header = [
        f"# Best trial of `replab tune` study {settings.study_name!r}: "
        f"trial {number}, {settings.metric} = {value:.6g} ({settings.direction}).",
        f"# Recipe {settings.recipe_source} "
        f"with {' '.join(settings.overrides) or 'no overrides'} and the tuned values:",
    ]
    header += [f"#   {k}: {show_value(v)}" for k, v in values.items()]
    header.append("# Train it with: replab run best.yaml")
    return "\n".join(header) + "\n" + spec_to_yaml(best_spec(settings, space, params))


def _importances(study) -> tuple[dict[str, float] | None, str]:
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return (
            None,
            f"parameter importances need at least 3 complete trials ({len(complete)} so far)",
        )
    try:
        with warnings.catch_warnings():  # few trials: Optuna warns that importances come out equal
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(study), ""
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        return (
            None,
            f"parameter importances could not be computed: {str(err).splitlines()[0][:200]}",
        )


def write_outputs(
    study, space: Space, settings: TuneSettings, study_dir: Path, log: Log = print
) -> TuneResult:

    from replab.reporting.tune_report import tune_figures, write_tune_report

    write_tables(study, space, settings, study_dir)
    rows = trial_rows(study, space)
    best = best_trial(study)
    importances, note = _importances(study)
    figs = tune_figures(
        rows,
        settings.metric,
        settings.epoch_key,
        settings.direction,
        importances,
        best.number if best else None,
    )
    for name, png in figs.items():
        atomic_write_bytes(study_dir / rundir.FIGURES / f"{rundir.safe_name(name)}.png", png)
    best_info = None
    if best is not None:
        best_info = {
            "number": best.number,
            "value": best.value,
            "params": space.decode(best.params),
            "run_dir": best.user_attrs.get("run_dir", ""),
            "yaml": BEST_YAML,
        }
    info = {
        "study_name": settings.study_name,
        "recipe": settings.recipe_source,
        "name": settings.name,
        "overrides": settings.overrides,
        "metric": settings.metric,
        "direction": settings.direction,
        "trials": settings.trials,
        "space": {p.key: p.describe() for p in space.params},
        "storage": masked_url(settings.storage)
        if settings.storage
        else f"sqlite:///{DB} (in this folder)",
        "pruner": (
            f"median, after {settings.prune_startup} "
            f"trials and {settings.prune_warmup} warm-up epochs"
        )
        if settings.prune
        else "off",
        "sampler": f"TPE (seed {settings.seed})",
        "importance_note": note,
    }
    write_tune_report(study_dir, info, rows, best_info, importances, figs)
    counts = trial_counts(study)
    finished = counts.get("complete", 0) + counts.get("pruned", 0)
    return TuneResult(
        study_dir,
        finished,
        counts,
        best_info,
        study_dir / BEST_YAML if best is not None else None,
    )


def trial_counts(study) -> dict[str, int]:
    """Trials per state ("complete": 3, ...), states with none left out. A trial a worker
    gave back in a race for the last slot never trained: it is no failure, and not counted."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if SURPLUS not in t.user_attrs]
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    return {k: v for k, v in counts.items() if v}


def show_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
