"""The life of a run folder: made (or reopened to resume), locked, its status kept, its
trackers opened and closed, and left exactly as it was when a run is refused before training.

What happens inside the folder (data, training, evaluation) is ``session.execute``.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from replab.errors import DiskFullError, ReplabError
from replab.io import (
    Log,
    atomic_write_bytes,
    atomic_write_json,
    folder_lock,
    recording_warnings,
    remove_stale_temp_files,
)
from replab.runs import rundir
from replab.runs.session import RunContext, execute
from replab.runs.tracking import RunTracker
from replab.spec import ExperimentSpec, same_training
from replab.training import check_trainer_spec, distributed
from replab.training.trainer import Hook


@dataclass
class RunResult:
    run_dir: Path | None  # None on ranks > 0 of a new run under torchrun: they write no folder
    summary: dict


def run_experiment(
    spec: ExperimentSpec,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    log: Log = print,
    run_dir: Path | None = None,
    hooks: list[Hook] | tuple[Hook, ...] = (),
) -> RunResult:
    """Train, evaluate and report ``spec``; with ``resume``, continue that run folder.

    ``run_dir`` names the new run folder exactly (studies do, so they can find it again);
    otherwise it is ``runs_dir/<name>-<timestamp>``. ``hooks`` are extra Trainer hooks called
    after every epoch with ``(trainer, record)`` (``replab tune`` reports to Optuna there). An
    exception with a ``run_state`` attribute (a pruned trial) leaves the run folder in that
    state, with the exception's text, instead of ``failed``.
    """
    check_trainer_spec(spec.trainer)
    # under torchrun: ranks > 0 train silently; rank 0 writes, evaluates, reports
    if not distributed.is_main():
        quiet = RunContext(spec, resume, resume is not None, lambda _: None, list(hooks))
        return RunResult(resume, execute(quiet))
    if resume:
        run_dir = Path(resume)
        rundir.read_spec(run_dir)  # a clear error before any lock file is made there
        made: list[Path] = []
    else:
        base = Path(run_dir) if run_dir else Path(runs_dir)
        # the folders this run makes, removed again if it fails before training
        made = [p for p in (base, *base.parents) if not p.exists()]
        run_dir = (
            rundir.create_run_dir(run_dir, spec) if run_dir else rundir.new_run_dir(runs_dir, spec)
        )
        made.insert(0, run_dir)
    ctx = RunContext(spec, run_dir, resume is not None, log, list(hooks))
    try:
        with folder_lock(run_dir, "run"):
            return RunResult(run_dir, _locked(ctx, run_dir))
    except ReplabError as err:
        # missing data, a model that cannot be built, a device not there: nothing was trained,
        # so leave no run folder behind (nor a runs folder made for it)
        if not resume and getattr(err, "before_training", False):
            shutil.rmtree(run_dir, ignore_errors=True)
            for folder in made[1:]:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        raise


def _locked(ctx: RunContext, run_dir: Path) -> dict:
    """The run, holding its folder's lock: no other process writes ``run_dir`` meanwhile."""
    if ctx.resumed:
        _check_resumable(run_dir, ctx.log)
    status_before = _read_bytes(run_dir / rundir.STATUS)
    rundir.set_status(run_dir, "running")
    try:
        with recording_warnings() as seen:
            summary = _tracked(ctx, run_dir)
        _keep_warnings(run_dir, summary, seen)
    except ReplabError as err:
        if not ctx.started:
            _restore_status(run_dir, status_before)
            err.before_training = True  # type: ignore[attr-defined]
            raise
        _mark_failed(run_dir, err.message)
        if isinstance(err, DiskFullError):
            raise DiskFullError(
                err.problem, f"free some space, then continue with `replab run --resume {run_dir}`"
            ) from None
        raise
    except BaseException as err:
        _interrupted(run_dir, err)
        raise
    rundir.set_status(run_dir, "finished")
    return summary


def _keep_warnings(run_dir: Path, summary: dict, seen: list[str]) -> None:
    """summary.json keeps every warning the run gave (the trackers' included, given as they
    closed, after the summary was first written): a notebook's may scroll away."""
    if not seen:
        return
    summary["warnings"] = [*summary.get("warnings", []), *seen]
    atomic_write_json(run_dir / rundir.SUMMARY, summary)


def _check_resumable(run_dir: Path, log: Log) -> None:
    """A folder another process runs, or one already finished, is not resumed."""
    rundir.check_not_running(run_dir)
    if rundir.read_status(run_dir) == "finished" and (run_dir / rundir.SUMMARY).is_file():
        raise ReplabError(
            f"{run_dir} has already finished; resuming it would change nothing",
            f"see its results with `replab report {run_dir}`, "
            f"or train it again as a new run: `replab run {run_dir / rundir.CONFIG}`",
        )
    if rundir.read_status(run_dir) is not None:
        log(f"resuming {run_dir}: it {rundir.describe_state(run_dir)}")
    # half-written files of a killed writer: holding the lock, we know it is gone
    remove_stale_temp_files(run_dir)


def _restore_status(run_dir: Path, before: bytes | None) -> None:
    """Refused before training (a bad checkpoint, missing data): the folder stays exactly as it
    was, status.json included, so the error is all that happened."""
    if before is None:
        (run_dir / rundir.STATUS).unlink(missing_ok=True)
    else:
        atomic_write_bytes(run_dir / rundir.STATUS, before)


def _interrupted(run_dir: Path, err: BaseException) -> None:
    """The folder's state after anything but a ReplabError: Ctrl-C, a pruned trial, a bug."""
    if isinstance(err, KeyboardInterrupt) and not hasattr(err, "replab_resume"):
        # Ctrl-C: the command line names this folder and the exact command that continues it
        err.replab_resume = (  # type: ignore[attr-defined]
            str(run_dir),
            f"replab run --resume {run_dir}",
        )
    state = getattr(err, "run_state", None)
    if isinstance(state, str):  # a pruned trial of `replab tune`
        rundir.set_status(run_dir, state, reason=str(err))
    elif isinstance(err, KeyboardInterrupt):
        # stopped on purpose (Ctrl-C, SIGTERM): nothing failed, and a resume says so
        with contextlib.suppress(ReplabError, OSError):
            rundir.set_status(run_dir, rundir.INTERRUPTED)
    else:
        _mark_failed(run_dir, f"{type(err).__name__}: {err}")


def _tracked(ctx: RunContext, run_dir: Path) -> dict:
    """The run with its TensorBoard and MLflow trackers, ended however the run ends."""
    ctx.tracker = RunTracker(ctx.spec, run_dir, ctx.log)
    try:
        summary = execute(ctx)
    except BaseException as err:
        ctx.tracker.close(err)
        raise
    ctx.tracker.close(None)
    return summary


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _mark_failed(run_dir: Path, error: str) -> None:
    """Best effort: on a full disk even status.json may not be writable, and then it keeps
    saying "running" with a pid that is gone, which readers report as interrupted."""
    with contextlib.suppress(ReplabError, OSError):
        rundir.set_status(run_dir, "failed", error=error)


def run_or_reuse(spec: ExperimentSpec, run_dir: Path, log: Log = print) -> dict:
    """The summary of the run in ``run_dir``: reused if finished, resumed if interrupted, else
    trained.

    This is what makes a study or sweep resumable: run it again and only missing work is done.
    """
    state = rundir.read_status(run_dir)
    if state is None or not (run_dir / rundir.CONFIG).is_file():
        return run_experiment(spec, run_dir=run_dir, log=log).summary
    if not same_training(rundir.read_spec(run_dir), spec):
        raise ReplabError(
            f"{run_dir} holds a run with another configuration",
            "pick a new study folder, or delete that run folder to retrain it",
        )
    if state == "finished" and (run_dir / rundir.SUMMARY).is_file():
        log(f"reusing the finished run {run_dir}")
        return rundir.read_summary(run_dir)
    return run_experiment(spec, resume=run_dir, log=log).summary
