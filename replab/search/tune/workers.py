"""The worker loop: ask for trials while fewer than N are finished or running, recover orphans."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path
from queue import Empty

from replab.errors import ReplabError
from replab.io import Log
from replab.registry import load_plugins
from replab.runs import rundir
from replab.search.space import (
    parse_space,
)
from replab.search.tune.outputs import best_trial, write_outputs, write_tables
from replab.search.tune.settings import (
    DB,
    SURPLUS,
    TUNE_JSON,
    TuneResult,
    TuneSettings,
    masked_url,
)
from replab.search.tune.storage import open_study, sampler_for
from replab.search.tune.trials import run_trial
from replab.training import threads
from replab.training.trainer import PROGRESS_ENV

STALE_SECONDS = 2 * 3600  # a trial on another host with no epoch finished for this long is orphaned
WAIT_SECONDS = 5.0  # how often a worker with nothing left to ask checks the other workers' trials


def run_tune(study_dir: Path, settings: TuneSettings, log: Log = print) -> TuneResult:
    from optuna.trial import TrialState

    study_dir = Path(study_dir)
    space = parse_space(settings.space, str(study_dir / TUNE_JSON))
    study = open_study(study_dir, settings, space)
    failures = 0
    waiting = False
    log(
        f"study {settings.study_name!r}: "
        f"{settings.trials} trials of {settings.name}, {settings.direction} {settings.metric}"
        f" (storage {masked_url(settings.storage) if settings.storage else study_dir / DB})"
    )
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
                log(
                    f"{done} trials finished and "
                    f"{running} running in other workers make {settings.trials}:"
                    " this worker waits for them (it takes over a trial whose worker stops)"
                )
                waiting = True
            time.sleep(WAIT_SECONDS)
            continue
        waiting = False
        trial = study.ask()
        if surplus(study, trial, settings.trials):
            log(f"trial {trial.number}: another worker took the last slot")
            continue
        # Seeded by the trial's number (unique in the study), after ask: two workers asking at
        # once saw the same trial count, and seeding by it drew the same values twice.
        study.sampler = sampler_for(settings, trial.number)
        state = run_trial(study, trial, space, settings, study_dir, log)
        if state == TrialState.FAIL:
            failures += 1
            if failures > max(3, settings.trials):
                raise ReplabError(
                    f"{failures} trials failed in this worker",
                    "see each trial's status.json; "
                    "narrow the search space (e.g. the learning rate)",
                )
        write_tables(study, space, settings, study_dir)
        log_progress(study, trial.number, settings, log)
    return write_outputs(study, space, settings, study_dir, log)


def surplus(study, trial, n: int) -> bool:
    """Did workers asking at the same time overshoot N? Lower trial numbers win; the loser
    gives its trial back (failed, its parameters queued again if they were queued for it)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    before = sum(t.state == TrialState.RUNNING and t.number < trial.number for t in trials)
    if done + before < n:
        return False
    frozen = study.get_trials(deepcopy=False)[trial.number] if len(trials) > trial.number else None
    # never trained: the summary does not count it as a failure (tables show it with this note)
    trial.set_user_attr(SURPLUS, "given back: another worker took the last slot")
    study.tell(trial, state=TrialState.FAIL)
    if frozen is not None and "fixed_params" in frozen.system_attrs:
        study.enqueue_trial(
            frozen.system_attrs["fixed_params"],
            user_attrs={
                k: v
                for k, v in frozen.user_attrs.items()
                if k in ("retry_of", "run_dir", "enqueued")
            },
        )
    return True


def recover_orphans(study, log: Log = print) -> list[int]:
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
        study.enqueue_trial(
            dict(t.params),
            user_attrs={"retry_of": t.number, "run_dir": t.user_attrs.get("run_dir")},
        )
        recovered.append(t.number)
        log(
            f"trial {t.number} was left running by a stopped worker "
            f"({t.user_attrs.get('worker', 'unknown')}): marked failed, its parameters queued again"
        )
    return recovered


def _orphaned(trial) -> bool:
    host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not rundir.is_alive({"pid": int(pid), "host": host})
    beat = trial.user_attrs.get("heartbeat")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is None or time.time() - beat > STALE_SECONDS


def log_progress(study, number: int, settings: TuneSettings, log: Log) -> None:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    t = trials[number]
    done = sum(x.state in (TrialState.COMPLETE, TrialState.PRUNED) for x in trials)
    line = f"trial {number} {t.state.name.lower()}"
    if t.value is not None:
        line += f": {settings.metric} {t.value:.5g}"
    best = best_trial(study)
    if best is not None:
        line += f" | best {best.value:.5g} (trial {best.number})"
    log(f"{line} | {done}/{settings.trials} finished")


# --- --jobs N: N worker processes on this machine --------------------------------------------


def run_tune_jobs(
    study_dir: Path, settings: TuneSettings, jobs: int, log: Log = print
) -> TuneResult:
    """``jobs`` local workers on the study's storage, as if ``replab tune --resume`` had been
    started ``jobs`` times, each with its share of the CPUs; then this process writes the
    outputs. The workers print only each finished trial's line (with the study's progress)."""
    if jobs == 1:
        return run_tune(study_dir, settings, log)
    # The tables and the --enqueue points made once, here, before the workers race for them.
    open_study(study_dir, settings, parse_space(settings.space, str(study_dir / TUNE_JSON)))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_tune_worker, args=(study_dir, settings, jobs, queue))
        for _ in range(jobs)
    ]
    errors: list[str] = []
    try:
        for worker in workers:
            worker.start()
        _relay(queue, workers, log, errors)
    finally:
        for worker in workers:  # Ctrl-C reaches them too: give them time to mark their trials
            worker.join(timeout=60)
            if worker.is_alive():
                worker.terminate()
    failed = [w.exitcode for w in workers if w.exitcode]
    if errors or failed:
        raise ReplabError(
            f"{len(failed) or len(errors)} of {jobs} tune workers stopped: "
            + (errors[0] if errors else f"exit status {failed[0]}"),
            f"fix the cause, then continue with `replab tune --resume {study_dir}`",
        )
    return run_tune(study_dir, settings, log)  # every trial is done: only the outputs remain


def _relay(queue, workers: list, log: Log, errors: list[str]) -> None:
    """The workers' lines, printed here as they come, until every worker has ended."""
    while True:
        try:
            kind, message = queue.get(timeout=0.5)
        except Empty:
            if not any(w.is_alive() for w in workers):
                break
            continue
        (errors.append if kind == "error" else log)(message)


def _tune_worker(study_dir: Path, settings: TuneSettings, jobs: int, queue) -> None:
    os.environ[PROGRESS_ENV] = "off"
    threads.partition(jobs)
    threads.set_interop(max(1, threads.available_cpus() // jobs))
    load_plugins(os.environ.get("REPLAB_PLUGINS"))

    def log(message: str) -> None:
        # a trial's own lines and the study header are the parent's to print, once
        if not message.startswith(("[trial", "study ")):
            queue.put(("log", message))

    try:
        run_tune(study_dir, settings, log)
    except ReplabError as err:
        queue.put(("error", err.message))
        sys.exit(2)
