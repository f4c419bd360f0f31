"""A run SIGKILLed at any moment leaves a resumable (or clearly marked) run folder, never a
half-written file, and ``replab run --resume`` then reaches the uninterrupted run's metrics.

Real ``replab run`` processes on the embedded digits are killed after seeded random delays
drawn from the stages of an uninterrupted run: start-up and data loading, the first and second
halves of training (a checkpoint write every epoch), and evaluation with report writing;
every other trial kills the resumed process too before a last resume runs to the end.
About 8x one run's wall time (2 minutes on an idle 2-core machine).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from replab.cli import main
from replab.io import LOCK_FILE, TMP_SUFFIX, load_checkpoint, read_jsonl
from replab.recipes import load_spec
from replab.runs import rundir

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 60
RUN = [
    "run",
    f"trainer.epochs={EPOCHS}",
    "trainer.progress=false",
    "trainer.early_stopping=null",
    "probe.trainer.epochs=30",
    "analysis.tsne=false",
    "seed=3",
]
TRIALS = 4


def child_env() -> dict[str, str]:
    """The child imports replab from this checkout (worktree or clean clone), single-threaded."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def replab(
    args: list[str], kill_after: float | None = None, after_line: str | None = None
) -> tuple[int | None, str]:
    """Run ``replab ARGS``; with ``kill_after``, SIGKILL it that many seconds after it starts, or
    after it logs a line starting with ``[replab] AFTER_LINE``. Returns (exit code or None if
    killed, output)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", *args],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if after_line and line.startswith(f"[replab] {after_line}"):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill_after is None:
        proc.wait(timeout=300)
    else:
        if after_line:
            while not seen.is_set() and proc.poll() is None:
                seen.wait(0.01)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reader.join()
            return None, "".join(lines)
    reader.join()
    return proc.returncode, "".join(lines)


def timed_reference(args: list[str]) -> tuple[float, dict[str, float]]:
    """Run to the end; return its wall time and when the first log line starting with each
    marker appeared (seconds after start)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", *args],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marks: dict[str, float] = {}
    lines = []
    for line in proc.stdout:
        lines.append(line)
        for marker in ("data: ", "epoch   1/", "trained "):
            if line.startswith(f"[replab] {marker}"):
                marks.setdefault(marker, time.perf_counter() - started)
    assert proc.wait(timeout=300) == 0, "".join(lines)
    return time.perf_counter() - started, marks


def _read_events(path: Path) -> None:
    """TensorBoard's own reader takes the whole file: an event file is an append-only log, so
    a kill may cut its last record, which the reader drops, never an earlier one."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    events = list(EventFileLoader(str(path)).Load())
    assert events and events[0].HasField("file_version"), path


def check_intact(run_dir: Path) -> None:
    """Every file a run folder holds is whole: it parses or loads (temp files aside)."""
    for path in sorted(run_dir.rglob("*")):
        temporary = any(
            part.startswith(".") and part.endswith(TMP_SUFFIX)
            for part in path.relative_to(run_dir).parts
        )  # a temp file, or a file inside a temp folder (the projector's, before its move)
        if not path.is_file() or temporary:
            continue
        if path.name == LOCK_FILE:
            continue  # a killed writer's lock file: only the kernel's lock counts, not its text
        data = path.read_bytes()
        if path.suffix == ".pt":
            load_checkpoint(path)
        elif path.suffix == ".json":
            json.loads(data)
        elif path.name == rundir.METRICS:
            lines = data.decode().splitlines()
            # an append cut by the kill may tear the last line only; resume rewrites it
            for line in lines[:-1]:
                json.loads(line)
        elif path.suffix == ".yaml":
            load_spec(path)
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), path
        elif path.suffix == ".png":
            assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), path
        elif path.name.startswith("events.out.tfevents"):
            _read_events(path)
        elif path.suffix in (".tsv", ".pbtxt"):  # the embedding projector's labels and config
            assert data.decode("utf-8").strip(), path
        elif path.suffix == ".npz":
            with zipfile.ZipFile(path) as z:
                assert z.testzip() is None, path
            with np.load(path, allow_pickle=False) as z:
                list(z.values())
        else:
            raise AssertionError(f"unexpected file in a run folder: {path}")


def files_of(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_FILE}


def the_run(runs: Path) -> Path | None:
    folders = [d for d in runs.iterdir() if (d / rundir.CONFIG).is_file()] if runs.is_dir() else []
    assert len(folders) <= 1, folders
    return folders[0] if folders else None


def assert_same_metrics(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert math.isclose(got[key], want[key], rel_tol=1e-6, abs_tol=1e-9), (
            key,
            got[key],
            want[key],
        )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    full, marks = timed_reference([*RUN, "--runs-dir", str(tmp_path / "reference")])
    want = json.loads((the_run(tmp_path / "reference") / rundir.SUMMARY).read_text())["metrics"]
    # The stages of the uninterrupted run, from when its log lines appeared: start-up and data
    # loading, the two halves of training (a checkpoint per epoch), evaluation and report
    # writing. Each kill is timed from the killed process's own log line, so start-up jitter
    # cannot move it to another stage.
    first, trained = marks["epoch   1/"], marks["trained "]
    half = (trained - first) / 2
    # the last 20% is mostly interpreter exit
    windows = [
        (None, 0.5 * marks["data: "], first),
        ("epoch   1/", 0, half),
        ("epoch   1/", half, 2 * half),
        ("trained ", 0, 0.8 * (full - trained)),
    ]
    assert len(windows) == TRIALS

    rng = random.Random(20261123)
    seen = []
    for trial, (after_line, low, high) in enumerate(windows):
        runs = tmp_path / f"trial{trial}"
        delay = rng.uniform(low, high)
        code, out = replab([*RUN, "--runs-dir", str(runs)], kill_after=delay, after_line=after_line)
        run = the_run(runs)
        stage = out.strip().splitlines()[-1] if out.strip() else "(no output yet)"
        seen.append(
            f"killed {delay:.1f}s after {after_line or 'start'!r} (run {full:.1f}s): {stage[:90]}"
        )
        # killed before the run folder had its config: nothing to resume, nothing half-written
        if run is None:
            assert code is None
            assert (
                all(p.name.endswith(TMP_SUFFIX) for p in runs.rglob("*") if p.is_file())
                if runs.exists()
                else True
            )
            continue
        check_intact(run)
        state = rundir.read_status(run)
        # None: killed before status.json was first written
        assert state in (None, "running", "finished"), state
        if code is None and state == "running":
            assert "interrupted" in rundir.describe_state(run)  # the pid in status.json is gone
            if not (run / rundir.SUMMARY).exists():
                capsys.readouterr()
                assert main(["report", str(run)]) == 2
                err = capsys.readouterr().err
                assert "interrupted" in err and "--resume" in err and "Traceback" not in err
        if state == "finished" and (run / rundir.SUMMARY).exists():
            # killed while exiting: resuming a finished run says so and changes nothing
            # (a lock file the killed writer left may go: the resume held and released it)
            before = files_of(run)
            code, out = replab(["run", "--resume", str(run)])
            assert code == 2 and "already finished" in out, out
            assert files_of(run) == before
            seen[-1] += "; already finished"
        else:
            # Every other trial kills the resume too; then a second resume finishes the job.
            code, out = replab(
                ["run", "--resume", str(run)],
                kill_after=rng.uniform(0.2, 1.0) * full if trial % 2 else None,
            )
            check_intact(run)
            if code is None:
                seen[-1] += "; resume killed too"
                if rundir.read_status(run) == "finished" and (run / rundir.SUMMARY).exists():
                    # killed while exiting, after it had finished: nothing is left to resume
                    seen[-1] += " (after finishing)"
                    code = 0
                else:
                    code, out = replab(["run", "--resume", str(run)])
            assert code == 0, out
        check_intact(run)
        assert not [p for p in run.rglob(f"*{TMP_SUFFIX}")], "resume leaves no temp files behind"
        assert rundir.read_status(run) == "finished"
        summary = json.loads((run / rundir.SUMMARY).read_text())
        assert_same_metrics(summary["metrics"], want)
        assert [r["epoch"] for r in read_jsonl(run / rundir.METRICS)] == list(range(1, EPOCHS + 1))
    with capsys.disabled():
        print("\n" + "\n".join(seen))
