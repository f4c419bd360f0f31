"""`replab tune` with two worker processes on one real PostgreSQL storage (``postgres_url`` in
conftest).

Exactly N trials finish, none twice, both workers take trials, and when one worker is killed
mid-trial the other recovers its trial (same host: the worker's pid is gone) and finishes the study.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.search.test_tune import DEFAULT, FAST, REPO, write

SPACE = (
    "model.encoder.latent_dim: {type: int, low: 4, high: 32}\n"
    "trainer.optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
)
FINISHED = ("COMPLETE", "PRUNED")


def worker(args: list[str], log: Path) -> subprocess.Popen:
    """One `replab tune` worker process; its output goes to ``log`` (a
    pipe nobody reads could fill)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:  # the child keeps its own copy of the file
        proc = subprocess.Popen(
            [sys.executable, "-m", "replab.cli", "tune", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    return proc.log.read_text(errors="replace")  # type: ignore[attr-defined]


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"worker {proc.pid} did not finish in {timeout:.0f} s:\n{output(proc)[-3000:]}")
    return output(proc)


@functools.cache
def storage_for(url: str):
    """One storage (one small connection pool) per server: a new one per poll would leave its
    connections open until garbage collection and exhaust the server's max_connections."""
    import optuna

    return optuna.storages.RDBStorage(url)


def trials_in(url: str, name: str) -> list:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage_for(url)).get_trials()
    except KeyError:  # the first worker has not created the study yet
        return []


def wait_for(condition, procs: list[subprocess.Popen], what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        for p in procs:
            assert p.poll() is None, f"worker {p.pid} stopped before {what}:\n{output(p)[-3000:]}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def pid_of(trial) -> int:
    return int(trial.user_attrs["worker"].rpartition(":")[2])


def check_exact(trials: list, n: int, study: Path) -> None:
    """Exactly N finished, no number twice, every complete trial has its finished run folder."""
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in trials if t.state.name in FINISHED]
    assert len(finished) == n, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    for t in finished:
        run = Path(t.user_attrs["run_dir"])
        assert run.parent == study.resolve() and (run / "config.yaml").is_file()
        if t.state.name == "COMPLETE":
            summary = json.loads((run / "summary.json").read_text())
            assert summary["metrics"]["val.loss"] == pytest.approx(t.value)
            assert json.loads((run / "status.json").read_text())["state"] == "finished"
    runs = [Path(t.user_attrs["run_dir"]) for t in finished]
    assert len(runs) == len(set(runs)), "two finished trials share a run folder"


def start_two_workers(postgres_url, tmp_path, study, n, epochs, procs):
    """A first worker starts the study; once its first trial exists, a second joins it
    (same folder, same storage)."""
    space = write(tmp_path / "space.yaml", SPACE)
    procs.append(
        worker(
            [
                DEFAULT,
                f"trainer.epochs={epochs}",
                *FAST,
                "--space",
                str(space),
                "--trials",
                str(n),
                "--no-prune",
                "--storage",
                postgres_url,
                "--study-dir",
                str(study),
            ],
            tmp_path / "first.log",
        )
    )
    wait_for(lambda: trials_in(postgres_url, study.name), procs, "the first worker's first trial")
    procs.append(
        worker(["--resume", str(study), "--storage", postgres_url], tmp_path / "second.log")
    )
    return procs


@pytest.mark.slow
def test_two_workers_share_one_postgres_study_and_finish_exactly_n_trials(postgres_url, tmp_path):
    study, n, procs = tmp_path / "shared", 6, []
    try:
        start_two_workers(postgres_url, tmp_path, study, n, 20, procs)
        outs = [finish(p, 400) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    trials = trials_in(postgres_url, study.name)
    check_exact(trials, n, study)
    per_worker = {
        p.pid: sum(pid_of(t) == p.pid for t in trials if t.state.name in FINISHED) for p in procs
    }
    print(f"finished trials per worker: {per_worker}; states: {[t.state.name for t in trials]}")
    assert all(per_worker.values()), f"a worker ran no trial: {per_worker}"
    params = [json.dumps(t.params, sort_keys=True) for t in trials if t.state.name in FINISHED]
    assert len(params) == len(set(params)), "two workers drew the same values"
    assert (study / "tune.html").is_file() and (study / "best.yaml").is_file()
    assert f"{n} trials finished" in outs[0] + outs[1]


@pytest.mark.slow
def test_killing_one_postgres_worker_mid_trial_leaves_the_other_finishing_the_study(
    postgres_url, tmp_path
):
    study, n, procs = tmp_path / "killed", 6, []
    try:
        first, second = start_two_workers(postgres_url, tmp_path, study, n, 30, procs)

        def both_training():  # each worker has a running trial, the first one some epochs in
            running = [
                t
                for t in trials_in(postgres_url, study.name)
                if t.state.name == "RUNNING" and "worker" in t.user_attrs
            ]
            mine = [
                t for t in running if pid_of(t) == first.pid and len(t.intermediate_values) >= 3
            ]
            return mine if mine and any(pid_of(t) == second.pid for t in running) else None

        (killed,) = wait_for(both_training, procs, "both workers training")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        out = finish(second, 400)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert second.returncode == 0, out[-3000:]
    trials = trials_in(postgres_url, study.name)
    check_exact(trials, n, study)
    by_number = {t.number: t for t in trials}
    # the dead worker's trial, recovered by the survivor
    assert by_number[killed.number].state.name == "FAIL"
    assert f"trial {killed.number} was left running by a stopped worker" in out
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert (
        retry.state.name == "COMPLETE"
        and retry.params == killed.params
        and pid_of(retry) == second.pid
    )
    # continued in the killed trial's folder...
    assert retry.user_attrs["run_dir"] == killed.user_attrs["run_dir"]
    assert "resumed after epoch" in out  # ...from its last checkpoint
    assert not [
        t
        for t in trials
        if t.state.name in FINISHED and pid_of(t) == first.pid and t.number > killed.number
    ]
    per_worker = {
        p.pid: sum(pid_of(t) == p.pid for t in trials if t.state.name in FINISHED) for p in procs
    }
    print(
        "finished trials per worker: "
        f"{per_worker}; killed trial {killed.number}, retried as {retry.number}"
    )
