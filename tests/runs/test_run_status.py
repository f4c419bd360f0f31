"""status.json names the process that wrote it, so "running" can be told from "killed"."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from replab.cli import main
from replab.errors import ReplabError
from replab.io import start_ticks
from replab.recipes import load_spec
from replab.runs import rundir
from replab.runs.lifecycle import run_or_reuse

FAST = [
    "trainer.epochs=2",
    "trainer.progress=false",
    "probe.enabled=false",
    "analysis.enabled=false",
]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_status(run_dir, **record):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / rundir.STATUS).write_text(
        json.dumps({"state": "running", "time": "2026-11-23T10:00:00", **record})
    )


def test_status_records_this_process(tmp_path):
    rundir.set_status(tmp_path, "running")
    record = rundir.read_status_record(tmp_path)
    assert record["pid"] == os.getpid() and rundir.is_alive(record)
    assert rundir.describe_state(tmp_path).startswith("still running (pid")


def test_a_running_status_whose_process_is_gone_reads_as_interrupted(tmp_path):
    pid = dead_pid()
    write_status(tmp_path, pid=pid, host=socket.gethostname())
    assert not rundir.is_alive(rundir.read_status_record(tmp_path))
    assert f"interrupted: its process (pid {pid}" in rundir.describe_state(tmp_path)
    rundir.check_not_running(tmp_path)  # resumable: no error


def test_a_reused_pid_is_not_the_run(tmp_path):
    rundir.set_status(tmp_path, "running")
    me = rundir.read_status_record(tmp_path)
    if "pid_start" not in me:
        pytest.skip("no /proc: process start times unknown")
    write_status(tmp_path, pid=os.getppid(), host=me["host"], pid_start=me["pid_start"] + 12345)
    assert not rundir.is_alive(rundir.read_status_record(tmp_path))


def test_resume_refuses_a_run_whose_process_is_alive(tmp_path, capsys):
    assert main(["run", *FAST, "--runs-dir", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = start_ticks(other.pid)
        write_status(
            run,
            pid=other.pid,
            host=socket.gethostname(),
            **({"pid_start": start} if start else {}),
        )
        assert main(["run", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert "still running" in err and f"kill {other.pid}" in err and "Fix:" in err
        with pytest.raises(ReplabError, match="still running"):
            run_or_reuse(rundir.open_existing(run), run, log=lambda m: None)
    finally:
        other.kill()
        other.wait()


def test_killed_run_is_reported_as_interrupted_and_resumed_by_a_study(tmp_path, capsys):
    assert main(["run", *FAST, "--runs-dir", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    (run / rundir.SUMMARY).unlink()
    (run / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-write leaves
    write_status(run, pid=dead_pid(), host=socket.gethostname())
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "interrupted" in err and f"replab run --resume {run}" in err
    logs = []
    summary = run_or_reuse(load_spec(run / rundir.CONFIG), run, log=logs.append)
    assert summary["epochs"] == 2 and any("resuming" in m and "interrupted" in m for m in logs)
    assert rundir.read_status(run) == "finished" and not list(run.glob("*.tmp"))


def test_a_record_with_this_pid_but_another_start_is_a_dead_run(tmp_path):
    # containers give the same low pid run after run: a killed run's status.json may name the
    # pid of the process now reading it
    started = start_ticks(os.getpid())
    if started is None:
        pytest.skip("no /proc: process start times unknown")
    write_status(tmp_path, pid=os.getpid(), host=socket.gethostname(), pid_start=started - 1)
    assert not rundir.is_alive(rundir.read_status_record(tmp_path))
    assert "interrupted" in rundir.describe_state(tmp_path)
