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

import csv
import hashlib
import io
import json
import math
import os
import socket
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

import replab
from replab.errors import ConfigError, DivergenceError, ReplabError
from replab.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from replab.spec import ExperimentSpec, read_recipe, spec_to_yaml, with_overrides
from replab.studies import rundir
from replab.studies.experiment import run_experiment
from replab.studies.search_space import (
    Space,
    check_space,
    parse_space,
    read_space,
    trial_config,
    trial_spec,
)

TUNE_JSON = "tune.json"
SPACE_YAML = "space.yaml"
DB = "optuna.db"
BEST_YAML = "best.yaml"
TRIALS_CSV = "trials.csv"
STALE_SECONDS = 2 * 3600  # a trial on another host with no epoch finished for this long is orphaned
WAIT_SECONDS = 5.0  # how often a worker with nothing left to ask checks the other workers' trials
DIRECTIONS = ("minimize", "maximize")


@dataclass
class TuneSettings:
    """Everything a study needs to be continued; saved as ``tune.json`` in the study folder."""

    recipe: dict
    recipe_source: str
    space: dict
    trials: int
    overrides: list[str] = field(default_factory=list)
    metric: str = "val.loss"
    direction: str = "minimize"
    storage: str | None = None  # None: sqlite:///STUDY_DIR/optuna.db
    study_name: str = ""
    seed: int = 0
    prune: bool = True
    prune_startup: int = 5  # trials that complete before the median rule prunes anything
    prune_warmup: int = 0  # epochs of every trial never pruned
    enqueue: list[dict] = field(default_factory=list)  # points (space key -> value) tried first, before the sampler draws

    @property
    def epoch_key(self) -> str:
        """The per-epoch record key of the metric: val.loss -> val_loss."""
        return self.metric.replace(".", "_", 1)

    @property
    def name(self) -> str:
        return str(self.recipe.get("name", "experiment"))

    def enqueued(self, space: Space) -> list[dict]:
        """The --enqueue points as Optuna stores them; a point outside ``space`` is a ConfigError."""
        return [space.stored_point(point, f"--enqueue #{i + 1}") for i, point in enumerate(self.enqueue)]


@dataclass
class TuneResult:
    study_dir: Path
    finished: int
    counts: dict[str, int]
    best: dict | None  # number, value, params
    best_yaml: Path | None


class Pruned(Exception):
    """Raised by the epoch hook; the run folder is left ``pruned`` (not ``failed``)."""

    run_state = "pruned"


# --- starting and resuming ---------------------------------------------------------------


def start_tune(recipe: str | Path, space_path: str | Path, trials: int, overrides: list[str], runs_dir: Path,
               study_dir: Path | None = None, log=print, **options) -> TuneResult:
    """Check everything, create the study folder, then search."""
    raw = read_recipe(recipe)
    space = read_space(space_path)
    settings = TuneSettings(recipe=raw, recipe_source=str(recipe), space=space.to_yaml_dict(), trials=trials,
                            overrides=list(overrides), **options)
    _check_settings(settings)
    check_space(raw, settings.overrides, space)  # before any folder or trial exists
    settings.enqueued(space)  # checked here, before any folder exists
    if settings.metric.startswith("val.") and (with_overrides(raw, settings.overrides).get("data") or {}).get("refit"):
        raise ConfigError("the recipe sets data.refit, so its validation images are trained on and val metrics cannot rank trials",
                          "tune without data.refit (add data.refit=false), then refit the best recipe")
    if study_dir is None:
        study_dir = Path(runs_dir) / f"{rundir.safe_name(settings.name)}-tune-{time.strftime('%Y%m%d-%H%M%S')}"
    study_dir = Path(study_dir)
    if (study_dir / TUNE_JSON).exists():
        raise ReplabError(f"{study_dir} already holds a study", f"continue it with `replab tune --resume {study_dir}`, or pick a new --study-dir")
    if study_dir.exists() and any(study_dir.iterdir()):
        raise ReplabError(f"{study_dir} exists and is not empty", "pick a new --study-dir (or leave it out for runs/<name>-tune-<time>)")
    settings.study_name = settings.study_name or study_dir.name
    study_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(study_dir / SPACE_YAML, yaml.safe_dump(settings.space, sort_keys=False))
    _save_settings(study_dir, settings)
    return run_tune(study_dir, settings, log)


def resume_tune(study_dir: Path, trials: int | None = None, storage: str | None = None, log=print) -> TuneResult:
    """Continue (or join, as one more worker) the study in ``study_dir``."""
    settings = load_settings(study_dir)
    if trials is not None:
        settings.trials = trials
    if storage is not None:
        settings.storage = storage
    if settings.storage and "***" in settings.storage:
        raise ConfigError(f"the storage of {study_dir} was saved without its password ({settings.storage})",
                          "pass the full URL again with --storage")
    _check_settings(settings)
    check_space(settings.recipe, settings.overrides, parse_space(settings.space, f"{study_dir / TUNE_JSON}"))
    _save_settings(study_dir, settings)
    return run_tune(Path(study_dir), settings, log)


def load_settings(study_dir: Path) -> TuneSettings:
    path = Path(study_dir) / TUNE_JSON
    if not path.is_file():
        raise ReplabError(f"{str(study_dir)!r} is not a tune study folder (no {TUNE_JSON})", "pass a folder written by `replab tune`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("replab_version", None)
        return TuneSettings(**data)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as err:
        raise ReplabError(f"{path} is not a valid tune settings file ({err})", "restore it, or start a new study") from None


def _save_settings(study_dir: Path, settings: TuneSettings) -> None:
    data = asdict(settings)
    data["storage"] = _masked(settings.storage) if settings.storage else None
    atomic_write_json(Path(study_dir) / TUNE_JSON, {**data, "replab_version": replab.__version__})


def _masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a journal file storage): keep as given
        return url


def _check_settings(s: TuneSettings) -> None:
    if s.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {s.trials}", "pass e.g. --trials 20")
    if s.direction not in DIRECTIONS:
        raise ConfigError(f"--direction {s.direction!r} is not minimize or maximize", "pass --direction minimize (losses) or maximize (accuracies)")
    if not s.metric or "." not in s.metric:
        raise ConfigError(f"--metric {s.metric!r} is not a summary metric name", "use a name from a run's summary.json, e.g. val.loss or probe.val_accuracy")
    if s.prune_startup < 0 or s.prune_warmup < 0:
        raise ConfigError("--prune-startup and --prune-warmup cannot be negative", "pass 0 or more")


# --- the search --------------------------------------------------------------------------


def open_study(study_dir: Path, settings: TuneSettings, space: Space):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = settings.storage or f"sqlite:///{(Path(study_dir) / DB).resolve()}"
    engine = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as err:  # sqlalchemy and driver errors (bad URL, server down, missing driver)
        raise ReplabError(f"cannot open the Optuna storage {_masked(url)}: {str(err).splitlines()[0][:300]}",
                          "check the URL (postgresql://user:password@host/db), that the server is up and its driver (psycopg2) installed") from None
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup, n_warmup_steps=settings.prune_warmup)
              if settings.prune else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=storage, study_name=settings.study_name, direction=settings.direction,
                                sampler=_sampler(settings, 0), pruner=pruner, load_if_exists=True)
    fingerprint = _fingerprint(settings)
    found = study.user_attrs.get("replab_tune")
    if found is None:
        study.set_user_attr("replab_tune", fingerprint)
        for params in settings.enqueued(space):  # once, by the worker that creates the study
            study.enqueue_trial(params, user_attrs={"enqueued": True})
    elif found != fingerprint:
        differs = ", ".join(k for k in fingerprint if fingerprint[k] != found.get(k))
        raise ConfigError(f"study {settings.study_name!r} in {_masked(url)} was started with another {differs}",
                          "join it with the same recipe, overrides, space and metric, or pick another --study-name")
    return study


def _fingerprint(s: TuneSettings) -> dict:
    """What workers sharing a study must agree on (a data folder may differ between machines)."""
    config = trial_config(s.recipe, s.overrides, {})
    config.get("data", {}).pop("root", None)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"recipe": digest, "space": s.space, "metric": s.metric, "direction": s.direction}


def _sampler(settings: TuneSettings, number: int):
    """TPE, seeded by the settings' seed plus the trial's number: reproducible for one worker,
    and a resumed (or second) worker does not repeat the random draws already made."""
    import optuna

    return optuna.samplers.TPESampler(seed=settings.seed + number)


def run_tune(study_dir: Path, settings: TuneSettings, log=print) -> TuneResult:
    from optuna.trial import TrialState

    study_dir = Path(study_dir)
    space = parse_space(settings.space, str(study_dir / TUNE_JSON))
    study = open_study(study_dir, settings, space)
    failures = 0
    waiting = False
    log(f"study {settings.study_name!r}: {settings.trials} trials of {settings.name}, {settings.direction} {settings.metric}"
        f" (storage {_masked(settings.storage) if settings.storage else study_dir / DB})")
    while True:
        # Before every trial, not only at start: a worker that dies while this one trains leaves
        # its trial RUNNING, and without this the study would stop one trial short.
        recover_orphans(study, log)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= settings.trials:
            break
        if done + running >= settings.trials:
            # The last trials run in other workers: wait for them rather than stop, so that if
            # one of those workers dies its trial is recovered and finished here.
            if not waiting:
                log(f"{done} trials finished and {running} running in other workers make {settings.trials}:"
                    " this worker waits for them (it takes over a trial whose worker stops)")
                waiting = True
            time.sleep(WAIT_SECONDS)
            continue
        waiting = False
        trial = study.ask()
        if _surplus(study, trial, settings.trials):
            log(f"trial {trial.number}: another worker took the last slot")
            continue
        # Seeded by the trial's number (unique in the study), after ask: two workers asking at
        # once saw the same trial count, and seeding by it drew the same values twice.
        study.sampler = _sampler(settings, trial.number)
        state = _run_trial(study, trial, space, settings, study_dir, log)
        if state == TrialState.FAIL:
            failures += 1
            if failures > max(3, settings.trials):
                raise ReplabError(f"{failures} trials failed in this worker", "see each trial's status.json; narrow the search space (e.g. the learning rate)")
        _write_tables(study, space, settings, study_dir)
        _progress(study, trial.number, settings, log)
    return write_outputs(study, space, settings, study_dir, log)


def _surplus(study, trial, n: int) -> bool:
    """Did workers asking at the same time overshoot N? Lower trial numbers win; the loser
    gives its trial back (failed, its parameters queued again if they were queued for it)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    before = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
    if done + before < n:
        return False
    frozen = study.get_trials(deepcopy=False)[trial.number] if len(trials) > trial.number else None
    study.tell(trial, state=TrialState.FAIL)
    if frozen is not None and "fixed_params" in frozen.system_attrs:
        study.enqueue_trial(frozen.system_attrs["fixed_params"], user_attrs={k: v for k, v in frozen.user_attrs.items() if k in ("retry_of", "run_dir", "enqueued")})
    return True


def recover_orphans(study, log=print) -> list[int]:
    """Fail the trials a dead worker left RUNNING and queue their parameters again."""
    from optuna.trial import TrialState

    recovered = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _orphaned(t):
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except Exception:  # another worker recovered it first
            continue
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number, "run_dir": t.user_attrs.get("run_dir")})
        recovered.append(t.number)
        log(f"trial {t.number} was left running by a stopped worker ({t.user_attrs.get('worker', 'unknown')}): marked failed, its parameters queued again")
    return recovered


def _orphaned(trial) -> bool:
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not rundir.is_alive({"pid": int(pid), "host": host})
    beat = trial.user_attrs.get("heartbeat")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is None or time.time() - beat > STALE_SECONDS


def _run_trial(study, trial, space: Space, settings: TuneSettings, study_dir: Path, log):
    """One trial as one replab run; returns the state it was told with."""
    from optuna.trial import TrialState

    values = space.suggest(trial)
    number = trial.number
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("heartbeat", time.time())
    tlog = lambda m: log(f"[trial {number}] {m}")  # noqa: E731
    tlog("start: " + ", ".join(f"{k}={_show(v)}" for k, v in values.items()) +
         (f" (again: trial {trial.user_attrs['retry_of']} was interrupted)" if "retry_of" in trial.user_attrs else ""))
    spec, run_dir, resume = _trial_run(settings, values, number, trial.user_attrs.get("run_dir"), study_dir)
    trial.set_user_attr("run_dir", str(run_dir.resolve()))
    reported: set[int] = set()
    hook = _epoch_hook(trial, settings, reported)
    try:
        if resume == "reuse":
            summary = rundir.read_summary(run_dir)
            tlog(f"reusing the finished run {run_dir}")
        else:
            summary = run_experiment(spec, resume=run_dir if resume else None, run_dir=None if resume else run_dir,
                                     log=tlog, hooks=[hook]).summary
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
    except ReplabError as err:
        trial.set_user_attr("error", err.message)
        study.tell(trial, state=TrialState.FAIL)
        raise
    except BaseException as err:  # Ctrl-C or a bug: the trial is failed and queued again for --resume
        trial.set_user_attr("error", f"{type(err).__name__}: {err}")
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": number, "run_dir": str(run_dir.resolve())})
        raise
    _report_history(trial, rundir.read_metrics(run_dir), settings, reported)
    value = summary["metrics"].get(settings.metric)
    if value is None:
        study.tell(trial, state=TrialState.FAIL)
        raise ConfigError(f"--metric {settings.metric!r} is not in the run summary",
                          f"pick one of: {', '.join(summary['metrics'])}")
    if not math.isfinite(value):
        trial.set_user_attr("error", f"{settings.metric} is {value}")
        study.tell(trial, state=TrialState.FAIL)
        return TrialState.FAIL
    study.tell(trial, value)
    return TrialState.COMPLETE


def _trial_run(settings: TuneSettings, values: dict, number: int, previous: str | None, study_dir: Path):
    """The trial's spec and run folder; an interrupted trial's folder is continued (or reused)."""
    if previous and Path(previous).is_dir() and (Path(previous) / rundir.CONFIG).is_file():
        old = Path(previous)
        try:
            spec = trial_spec(settings.recipe, settings.overrides, values, rundir.open_existing(old).name)
            if rundir.open_existing(old) == spec:
                finished = rundir.read_status(old) == "finished" and (old / rundir.SUMMARY).is_file()
                return spec, old, "reuse" if finished else (old / rundir.LAST).is_file()
        except ReplabError:
            pass
    run_dir = study_dir / f"trial-{number:04d}"
    return trial_spec(settings.recipe, settings.overrides, values, f"{settings.name}-trial-{number:04d}"), run_dir, False


def _epoch_hook(trial, settings: TuneSettings, reported: set[int]):
    def hook(trainer, record: dict) -> None:
        trial.set_user_attr("heartbeat", time.time())
        _report_history(trial, trainer.history, settings, reported)
        value = record.get(settings.epoch_key)
        if settings.prune and value is not None and trial.should_prune():
            raise Pruned(f"pruned after epoch {record['epoch']}: {settings.epoch_key} {value:.5g} is worse than the median of earlier trials")

    return hook


def _report_history(trial, history: list[dict], settings: TuneSettings, reported: set[int]) -> None:
    """Report every epoch's metric not yet reported (a resumed run's earlier epochs included)."""
    for r in history:
        epoch, value = r.get("epoch"), r.get(settings.epoch_key)
        if epoch is None or value is None or epoch in reported or not math.isfinite(value):
            continue
        trial.report(float(value), int(epoch))
        reported.add(epoch)


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _progress(study, number: int, settings: TuneSettings, log) -> None:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    t = trials[number]
    done = sum(x.state in (TrialState.COMPLETE, TrialState.PRUNED) for x in trials)
    line = f"trial {number} {t.state.name.lower()}"
    if t.value is not None:
        line += f": {settings.metric} {t.value:.5g}"
    best = _best(study)
    if best is not None:
        line += f" | best {best.value:.5g} (trial {best.number})"
    log(f"{line} | {done}/{settings.trials} finished")


def _best(study):
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
        rows.append({
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "params": space.decode(t.params),
            "curve": sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
            "seconds": (end - start).total_seconds() if start and end else None,
            "run_dir": t.user_attrs.get("run_dir", ""),
            "note": _note(t.user_attrs),
        })
    return rows


def _note(attrs: dict) -> str:
    """Why a trial ended as it did, else where its parameters came from."""
    origin = f"retry of trial {attrs['retry_of']}" if "retry_of" in attrs else "queued by --enqueue" if attrs.get("enqueued") else ""
    return attrs.get("pruned") or attrs.get("error") or origin


def _write_tables(study, space: Space, settings: TuneSettings, study_dir: Path) -> None:
    rows = trial_rows(study, space)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", settings.metric, *space.keys, "epochs", "seconds", "run_dir", "note"])
    for r in rows:
        writer.writerow([r["number"], r["state"], "" if r["value"] is None else repr(r["value"]),
                         *(_show(r["params"][k]) if k in r["params"] else "" for k in space.keys),
                         len(r["curve"]), "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["run_dir"], r["note"]])
    atomic_write_text(study_dir / TRIALS_CSV, buffer.getvalue())
    best = _best(study)
    if best is not None:
        atomic_write_text(study_dir / BEST_YAML, best_yaml(settings, space, best.number, best.value, best.params))


def best_spec(settings: TuneSettings, space: Space, params: dict) -> ExperimentSpec:
    return trial_spec(settings.recipe, settings.overrides, space.decode(params), f"{settings.name}-tuned")


def best_yaml(settings: TuneSettings, space: Space, number: int, value: float, params: dict) -> str:
    values = space.decode(params)
    header = [f"# Best trial of `replab tune` study {settings.study_name!r}: trial {number}, {settings.metric} = {value:.6g} ({settings.direction}).",
              f"# Recipe {settings.recipe_source} with {' '.join(settings.overrides) or 'no overrides'} and the tuned values:"]
    header += [f"#   {k}: {_show(v)}" for k, v in values.items()]
    header.append("# Train it with: replab run best.yaml")
    return "\n".join(header) + "\n" + spec_to_yaml(best_spec(settings, space, params))


def _importances(study) -> tuple[dict[str, float] | None, str]:
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return None, f"parameter importances need at least 3 complete trials ({len(complete)} so far)"
    try:
        with warnings.catch_warnings():  # few trials: Optuna warns that importances come out equal
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(study), ""
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        return None, f"parameter importances could not be computed: {str(err).splitlines()[0][:200]}"


def write_outputs(study, space: Space, settings: TuneSettings, study_dir: Path, log=print) -> TuneResult:
    from optuna.trial import TrialState

    from replab.reporting.tune_report import tune_figures, write_tune_report

    _write_tables(study, space, settings, study_dir)
    rows = trial_rows(study, space)
    best = _best(study)
    importances, note = _importances(study)
    figs = tune_figures(rows, settings.metric, settings.epoch_key, settings.direction, importances, best.number if best else None)
    for name, png in figs.items():
        atomic_write_bytes(study_dir / rundir.FIGURES / f"{rundir.safe_name(name)}.png", png)
    best_info = None
    if best is not None:
        best_info = {"number": best.number, "value": best.value, "params": space.decode(best.params),
                     "run_dir": best.user_attrs.get("run_dir", ""), "yaml": BEST_YAML}
    info = {"study_name": settings.study_name, "recipe": settings.recipe_source, "name": settings.name,
            "overrides": settings.overrides, "metric": settings.metric, "direction": settings.direction,
            "trials": settings.trials, "space": {p.key: p.describe() for p in space.params},
            "storage": _masked(settings.storage) if settings.storage else f"sqlite:///{DB} (in this folder)",
            "pruner": f"median, after {settings.prune_startup} trials and {settings.prune_warmup} warm-up epochs" if settings.prune else "off",
            "sampler": f"TPE (seed {settings.seed})", "importance_note": note}
    write_tune_report(study_dir, info, rows, best_info, importances, figs)
    counts = {s.name.lower(): sum(t.state == s for t in study.get_trials(deepcopy=False)) for s in TrialState}
    finished = counts.get("complete", 0) + counts.get("pruned", 0)
    return TuneResult(study_dir, finished, {k: v for k, v in counts.items() if v}, best_info,
                      study_dir / BEST_YAML if best is not None else None)
