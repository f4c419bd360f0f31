"""Threads from what the process may use (issue 19): cgroup quotas read from files the test
writes, the --threads / REPLAB_THREADS / fair-share precedence, and the live-run registry
counted with real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from replab.errors import ConfigError
from replab.training import threads


@pytest.fixture(autouse=True)
def _no_fixed(monkeypatch):
    monkeypatch.setattr(threads, "_fixed", None)
    monkeypatch.setattr(threads, "_jobs", 1)
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cgroup_v2_quota_unlimited_and_missing(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpus(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    assert threads.cgroup_cpus(tmp_path) is None  # no cgroup files: no limit known


@pytest.mark.parametrize("folder", ["cpu", "cpu,cpuacct", "."])
def test_cgroup_v1_quota(tmp_path, folder):
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / folder / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpus(tmp_path) == 3.0
    (tmp_path / folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpus(tmp_path) is None


def test_available_is_the_smallest_of_affinity_quota_and_torch_default(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 8)
    monkeypatch.setattr(threads, "_default", 6)
    (tmp_path / "cpu.max").write_text("250000 100000")
    assert threads.available_cpus(tmp_path) == 2  # 2.5 CPUs rounded down
    (tmp_path / "cpu.max").write_text("50000 100000")
    assert threads.available_cpus(tmp_path) == 1  # never 0
    (tmp_path / "cpu.max").write_text("max 100000")
    assert threads.available_cpus(tmp_path) == 6
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 3)
    assert threads.available_cpus(tmp_path) == 3


def test_precedence_threads_flag_then_env_then_share(tmp_path, monkeypatch):
    share = threads.CpuShare(available=4, folder=tmp_path)
    assert share.choose() == 4 and share.source.startswith("fair share")
    monkeypatch.setenv(threads.ENV, "3")
    assert share.choose() == 3 and share.source == threads.ENV
    threads.fix(2)
    assert share.choose() == 2 and share.source == "--threads"
    assert os.environ[threads.ENV] == "2"  # what spawned workers inherit


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_is_a_config_error(monkeypatch, bad):
    monkeypatch.setenv(threads.ENV, bad)
    with pytest.raises(ConfigError, match="REPLAB_THREADS"):
        threads.fixed_threads()


def test_jobs_partition_caps_the_share(tmp_path):
    threads.partition(3)
    assert threads.CpuShare(available=7, folder=tmp_path).choose() == 2
    threads.partition(16)
    assert threads.CpuShare(available=7, folder=tmp_path).choose() == 1


def _entry(folder, pid, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": socket.gethostname(), "threads": 1, **extra}
    (folder / f"{pid}.json").write_text(json.dumps(record))


def test_live_runs_share_the_cpus_and_dead_entries_are_removed(tmp_path):
    folder = tmp_path / "live"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        _entry(folder, sleeper.pid)
        _entry(folder, dead.pid)
        _entry(folder, 4_000_000, host="another-machine")  # a shared cache: not our CPUs
        with threads.share_cpus(folder) as share:
            # this run and the sleeping one: half of the CPUs each
            assert share.threads == max(1, threads.available_cpus() // 2)
            assert torch.get_num_threads() == share.threads
            assert (folder / f"{os.getpid()}.json").is_file()
        assert not (folder / f"{dead.pid}.json").exists()  # stale: removed by the reader
        assert not (folder / f"{os.getpid()}.json").exists()  # its own entry, removed at the end
        sleeper.kill()
        sleeper.wait()
        share = threads.CpuShare(available=4, folder=folder)
        assert share.choose() == 4  # the sleeper is gone: all of them again
        assert share.record()["available_cpus"] == 4
    finally:
        sleeper.kill()


def test_a_reused_pid_is_not_a_live_run(tmp_path):
    folder = tmp_path / "live"
    _entry(folder, os.getpid(), pid_start=-5)  # this pid, but started at another time
    assert threads.live_runs(folder) == []


def test_an_ended_process_not_yet_reaped_is_not_a_live_run(tmp_path):
    """A helper that has ended stays a zombie until the run that started it reaps it; it uses
    no CPU, so it no longer counts."""
    folder = tmp_path / "live"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, ended.pid, os.WEXITED | os.WNOWAIT)  # ended, left unreaped
        _entry(folder, ended.pid)
        assert threads.live_runs(folder) == []
    finally:
        ended.wait()


def test_epoch_boundary_recounts(tmp_path):
    folder = tmp_path / "live"
    with threads.share_cpus(folder) as share:
        first = share.threads
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            _entry(folder, sleeper.pid)
            share.epoch_hook(None, {})
            assert share.threads == max(1, share.available // 2)
            assert share.record()["threads"] == first
        finally:
            sleeper.kill()
            sleeper.wait()


def test_a_run_share_limits_blas_and_openmp_too(tmp_path, monkeypatch):
    """numpy's and scipy's OpenBLAS and scikit-learn's OpenMP start one thread per core: a
    run with one thread keeps them to one, and the count is restored after the run."""
    from threadpoolctl import threadpool_info

    from replab.io import import_limited

    import_limited("sklearn.neighbors")  # its libraries are loaded, as in an analysis
    counts = lambda: {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}  # noqa: E731
    before = counts()
    monkeypatch.setenv(threads.ENV, "1")
    with threads.share_cpus(tmp_path / "live"):
        inside = counts()
    assert inside and set(inside.values()) == {1}
    if torch.get_num_threads() > 1:
        assert counts() == before
