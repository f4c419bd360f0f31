"""``--jobs N``: N runs at once, each in its own process, the CPUs split between them.

Each worker process (forked from a server process that only imported replab and its
libraries, so no state is shared with the parent) runs one run at a time through
``run_or_reuse``, exactly as the sequential code would: its folder is
the same fixed folder, so a killed study or sweep resumes as before, and every run seeds
itself, so a run's metrics do not depend on which worker ran it or when. Workers print
nothing and draw no bars; the parent writes one line per finished run with the progress of
the whole pool.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from replab.data.limits import available_memory_mb
from replab.errors import ReplabError, ReplabWarning
from replab.io import Log, warn
from replab.registry import load_plugins
from replab.runs import forkserver
from replab.runs.lifecycle import run_or_reuse
from replab.spec import ExperimentSpec
from replab.training import threads
from replab.training.threads import usable_cpus
from replab.training.trainer import PROGRESS_ENV

# A worker is a Python process with torch, replab and the evaluation libraries imported that
# trains one run at a time. Measured (issue 30, digits-autoencoder, 2 CPUs): 410 MB resident
# before its first run (mostly shared with the fork server), 640-720 MB after one, of which
# 250 MB its own (430 MB proportional). `tune --jobs` workers are spawned, sharing less.
WORKER_MB = 600
# workers per usable CPU at most: more only wait on each other (and hold their memory)
PER_CPU = 4


def check_jobs(jobs: int) -> int:
    """``jobs`` if this machine can hold that many workers: in range, at most ``PER_CPU``
    per usable CPU, and ``WORKER_MB`` each within the memory available now."""
    if not isinstance(jobs, int) or jobs < 1 or jobs > 256:
        raise ReplabError(f"--jobs {jobs!r} is out of range", "give between 1 and 256 jobs")
    if jobs == 1:  # the runs stay in this process
        return jobs
    cpus = usable_cpus()
    memory = available_memory_mb()
    fit = cpus * PER_CPU if memory is None else min(cpus * PER_CPU, int(memory // WORKER_MB))
    if jobs > fit:
        held = f"{cpus} usable CPU{'s' if cpus > 1 else ''} (at most {PER_CPU} workers each)"
        if memory is not None:
            held += (
                f" and {memory / 1024:.1f} GiB of memory available (about {WORKER_MB} MB a worker)"
            )
        raise ReplabError(
            f"--jobs {jobs} would start {jobs} worker processes, more than this machine holds: "
            f"{held}",
            f"pass --jobs {fit} or fewer (--jobs {max(1, min(cpus, fit))} gives each a CPU)"
            if fit > 1
            else "pass --jobs 1 (one run after another in this process), or free some memory",
        )
    return jobs


def _start_worker(jobs: int, environ: dict[str, str]) -> None:
    """In each worker: the parent's environment of now (the fork server keeps the one it
    started with), quiet, one ``jobs``-th of the CPUs, the user's plugins loaded."""
    os.environ.clear()
    os.environ.update(environ)
    os.environ[PROGRESS_ENV] = "off"
    # a run's warnings stay in its summary.json, and the parent issues them (RunPool._report)
    warnings.filterwarnings("ignore", category=ReplabWarning)
    threads.partition(jobs)
    share = max(1, threads.available_cpus() // jobs)
    threads.set_interop(share)
    load_plugins(os.environ.get("REPLAB_PLUGINS"))


def _run_in_worker(spec: ExperimentSpec, run_dir: Path) -> tuple[dict | None, str | None]:
    """(summary, None), or (None, the error as one line): exceptions of other classes may not
    survive the trip between processes, their messages do."""
    try:
        return run_or_reuse(spec, run_dir, log=lambda _: None), None
    except ReplabError as err:
        return None, err.message
    except BaseException as err:  # noqa: BLE001 - reported by the parent, with the folder
        return None, f"{type(err).__name__}: {err}"


class RunPool:
    """A pool of ``jobs`` worker processes; ``submit`` returns at once, ``result`` waits."""

    def __init__(self, jobs: int, log: Log = print) -> None:
        self.jobs = check_jobs(jobs)
        self.log = log
        self.executor = ProcessPoolExecutor(
            jobs,
            mp_context=forkserver.context(),
            initializer=_start_worker,
            initargs=(jobs, dict(os.environ)),
        )
        self.lock = threading.Lock()
        self.submitted = self.finished = 0
        self.futures: list[tuple[Future, Path]] = []
        self.start = time.perf_counter()

    def submit(self, spec: ExperimentSpec, run_dir: Path, label: str) -> Future:
        with self.lock:
            self.submitted += 1
        future = self.executor.submit(_run_in_worker, spec, Path(run_dir))
        self.futures.append((future, Path(run_dir)))
        future.add_done_callback(lambda f: self._report(f, label))
        return future

    def _report(self, future: Future, label: str) -> None:
        with self.lock:
            self.finished += 1
            done, total = self.finished, self.submitted
        if future.cancelled():
            return
        error = future.exception()
        summary, message = (None, str(error)) if error else future.result()
        for said in (summary or {}).get("warnings") or []:
            warn(f"{label}: {said}")
        if summary is None:
            line = f"failed {label}: {message}"
        else:
            metric = _headline(summary.get("metrics", {}))
            took = summary.get("timings", {}).get("total", 0.0)
            line = f"finished {label} ({took:.1f} s){': ' + metric if metric else ''}"
        elapsed = time.perf_counter() - self.start
        self.log(f"{line} | {done}/{total} runs done, {self.jobs} jobs, {elapsed:.0f} s")

    def result(self, future: Future, run_dir: Path) -> dict:
        """The run's summary; its error (naming the folder and how to continue) if it failed."""
        try:
            summary, message = future.result()
        except Exception as err:  # a worker that died (killed, out of memory)
            summary, message = None, f"its worker process stopped ({type(err).__name__}: {err})"
        if summary is None:
            raise ReplabError(
                f"the run {run_dir} failed: {message}",
                "fix the cause, then resume the study or sweep (its finished runs are reused)",
            )
        return summary

    def wait_all(self) -> None:
        """Every run submitted so far finished; the first failure (in order) is raised."""
        for future, run_dir in list(self.futures):
            self.result(future, run_dir)

    def close(self, cancel: bool = False) -> None:
        """Wait for the running runs (and, unless ``cancel``, the queued ones) to end."""
        self.executor.shutdown(wait=True, cancel_futures=cancel)


@contextlib.contextmanager
def pooled(jobs: int, log: Log = print) -> Iterator[RunPool | None]:
    """A pool for ``jobs`` > 1 (None for 1: runs stay in this process, as before). On leaving,
    every run has finished and the first failure is raised; on an error or Ctrl-C the queued
    runs are cancelled and the running ones end (Ctrl-C reaches them too)."""
    if check_jobs(jobs) == 1:
        yield None
        return
    pool = RunPool(jobs, log)
    try:
        yield pool
        pool.wait_all()
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()


def _headline(metrics: dict) -> str:
    """The run's main figure for its line: the probe's or classifier's accuracy, else a loss."""
    for key in ("probe.test_accuracy", "test.accuracy", "test.mae", "val.loss", "test.loss"):
        if isinstance(metrics.get(key), int | float):
            return f"{key} {metrics[key]:.4f}"
    return ""
