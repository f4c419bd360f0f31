"""Run folders as hostile input, beyond the fixed corpus (tests/test_hostile_inputs.py):

- hypothesis writes malformed summary.json, status.json, latent-map.json and config.yaml files
  (JSON/YAML of the wrong shapes, in the wrong encodings) and gives the folder to
  ``replab report``, ``replab compare`` and ``replab run --resume``: each ends in success or
  in one ``replab: error: ... Fix: ...`` line with exit status 2, never an exception;
- two processes resume the same killed run at the same instant (slow): the folder's lock lets
  exactly one train, the other names it, and the metrics equal an uninterrupted run's;
- the command line: a closed pipe is quiet, Ctrl-C names the folder and the resume command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replab.cli import main
from replab.runs import rundir

REPO = Path(__file__).resolve().parents[1]
TINY = ["trainer.epochs=2", "probe.enabled=false", "analysis.enabled=false"]


def child_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("finished")
    assert main(["run", "digits-autoencoder", *TINY, "--runs-dir", str(runs)]) == 0
    (run_dir,) = runs.iterdir()
    return run_dir


def cli(argv: list[str]) -> tuple[int, str]:
    """``replab ARGV`` in this process: (exit status, stderr). Any exception fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def assert_clear(code: int, err: str, allowed: tuple[int, ...] = (0, 2)) -> None:
    assert code in allowed, err
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith("replab: error:")]
        assert len(lines) == 1 and "Fix:" in lines[0], err


# --- hypothesis: malformed run-folder files ----------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# near misses hit the schema's paths rather than its first check
summaries = st.fixed_dictionaries(
    {"name": values, "metrics": values},
    optional={"figures": values, "timings": values, "reference": values, "per_class": values},
)
statuses = st.fixed_dictionaries({"state": values}, optional={"pid": values, "host": values})
hover_maps = st.fixed_dictionaries(
    {"points": values, "classes": values, "cols": values, "tile": values}
)
ENCODINGS = ["utf-8", "utf-16", "latin-1", "utf-8-sig", "cp1252"]


@st.composite
def encoded(draw, shapes, dump=json.dumps) -> bytes:
    """``shapes`` serialised (or raw bytes), in one of several encodings."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    text = dump(draw(shapes))
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


def yaml_dump(value) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


def folder_from(run: Path, files: dict[str, bytes], keep: tuple[str, ...]) -> Path:
    """A fresh copy of ``keep`` from the finished run, plus ``files``."""
    folder = Path(tempfile.mkdtemp(prefix="hostile-")) / "r"
    folder.mkdir()
    for name in keep:
        source = run / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy2(source, folder / name)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HYPOTHESIS
@given(summary=encoded(summaries | values), command=st.sampled_from(["report", "compare"]))
def test_any_summary_is_read_or_refused_clearly(finished_run, summary, command):
    folder = folder_from(finished_run, {"summary.json": summary}, ("config.yaml", "figures"))
    try:
        argv = [command, str(folder)]
        argv += ["--out", str(folder.parent / "cmp")] if command == "compare" else []
        assert_clear(*cli(argv))
    finally:
        shutil.rmtree(folder.parent)


@HYPOTHESIS
@given(hover=encoded(hover_maps | values))
def test_any_latent_map_is_read_or_refused_clearly(finished_run, hover):
    folder = folder_from(
        finished_run,
        {"figures/latent-map.json": hover, "figures/latent-map-sprite.png": b"\x89PNG"},
        ("config.yaml", "figures", "summary.json"),
    )
    try:
        assert_clear(*cli(["report", str(folder)]))
    finally:
        shutil.rmtree(folder.parent)


@HYPOTHESIS
@given(status=encoded(statuses | values))
def test_any_status_is_resumed_or_refused_clearly(finished_run, status):
    # the run's last.pt finished its epochs: a resume that is let through only evaluates
    folder = folder_from(finished_run, {"status.json": status}, ("config.yaml", "last.pt"))
    try:
        assert_clear(*cli(["run", "--resume", str(folder)]))
    finally:
        shutil.rmtree(folder.parent)


@HYPOTHESIS
@given(config=encoded(values, dump=yaml_dump) | st.text(max_size=200).map(str.encode))
def test_any_config_is_refused_clearly_on_resume(finished_run, config):
    # no generated mapping has a model and an objective, so every one is refused
    folder = folder_from(finished_run, {"config.yaml": config}, ("last.pt",))
    try:
        assert_clear(*cli(["run", "--resume", str(folder)]), allowed=(2,))
    finally:
        shutil.rmtree(folder.parent)


def test_an_oversized_pickle_is_refused_before_it_is_read(tmp_path):
    from replab.data.safe_pickle import MAX_PICKLE_BYTES, load_pickle
    from replab.errors import DataError

    batch = tmp_path / "data_batch_1"
    with batch.open("wb") as f:  # sparse: no disk space, and never read
        f.truncate(MAX_PICKLE_BYTES + 1)
    with pytest.raises(DataError, match="larger than any CIFAR batch"):
        load_pickle(batch)


study_files = st.fixed_dictionaries(
    {"study": values, "seeds": values}, optional={"params": values, "quick": values}
)
tune_files = st.fixed_dictionaries(
    {"recipe": values, "recipe_source": values, "space": values, "trials": values},
    optional={"metric": values, "enqueue": values, "prune": values},
)


def not_a_real_study(value) -> bool:
    """A drawn study.json naming a registered study with valid seeds would run that study."""
    from replab.studies.framework import STUDIES

    return not (isinstance(value, dict) and value.get("study") in STUDIES.names())


@HYPOTHESIS
@given(study=encoded((study_files | values).filter(not_a_real_study)))
def test_any_study_json_is_refused_clearly_on_resume(study):
    folder = Path(tempfile.mkdtemp(prefix="hostile-")) / "s"
    folder.mkdir()
    (folder / "study.json").write_bytes(study)
    try:
        assert_clear(*cli(["study", "--resume", str(folder)]), allowed=(2,))
    finally:
        shutil.rmtree(folder.parent)


@HYPOTHESIS
@given(tune=encoded(tune_files | values))
def test_any_tune_json_is_refused_clearly_on_resume(tune):
    # no drawn recipe has a model and an objective, so no search can start
    folder = Path(tempfile.mkdtemp(prefix="hostile-")) / "t"
    folder.mkdir()
    (folder / "tune.json").write_bytes(tune)
    try:
        assert_clear(*cli(["tune", "--resume", str(folder)]), allowed=(2,))
    finally:
        shutil.rmtree(folder.parent)


# --- the command line ---------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly():
    """`replab recipes | head -1`: the reader goes away after one line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", "recipes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_names_the_folder_and_the_resume_command(tmp_path, signum):
    """Ctrl-C and SIGTERM alike: the resume line, and a folder that says it was interrupted
    (not "failed (KeyboardInterrupt)"), which is what its resume then reports."""
    runs = tmp_path / "runs"
    # no early stopping: the digits run otherwise ends by itself within ~10 s, and on a loaded
    # CI machine it once finished before the signal came (exit 0, nothing to resume)
    argv = [
        "run",
        "digits-autoencoder",
        "trainer.epochs=100000",
        "trainer.early_stopping=null",
        "probe.enabled=false",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", *argv, "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        # A terminal's Ctrl-C reaches a process whose SIGINT is at its default. A child inherits
        # an ignored SIGINT, and under the full xdist suite something in the worker had set it
        # so (the signal was lost twice in CI), so the child starts from the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it trains: epoch 1 is logged
        if "epoch" in line:
            break
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("Ctrl-C did not stop the run within 60 s")
    (run_dir,) = runs.iterdir()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    assert f"{run_dir} keeps its last checkpoint" in err, err
    assert f"`replab run --resume {run_dir}`" in err, err
    assert (run_dir / "last.pt").is_file()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "interrupted"
    said = rundir.describe_state(run_dir)
    assert said.startswith("was interrupted") and "failed" not in said, said


def test_main_puts_back_the_signal_handler_and_warning_display(capsys):
    """main() called in someone else's process (a test, a notebook) leaves SIGTERM and the
    warnings display as it found them."""
    import warnings

    shown, term = warnings.showwarning, signal.getsignal(signal.SIGTERM)
    assert main(["recipes"]) == 0
    assert warnings.showwarning is shown and signal.getsignal(signal.SIGTERM) == term
    capsys.readouterr()


# --- two resumes of one killed run at the same instant ------------------------------------------

# A worker imports replab once, then for each job waits for the shared start time and runs
# `replab ARGV`, answering with its exit status and stderr: both racers are already warm.
WORKER = r"""
import contextlib, io, json, sys, time
from replab.cli import main
for line in sys.stdin:
    job = json.loads(line)
    time.sleep(max(0.0, job["start"] - time.time()))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(job["argv"])
    print(json.dumps({"code": code, "err": err.getvalue()}), flush=True)
"""

# A run killed (SIGKILL, as the OOM killer would) right after its first epoch's checkpoint.
KILLED = r"""
import os, signal, sys
from pathlib import Path
from replab.recipes import load_spec
from replab.runs.lifecycle import run_experiment

def kill(trainer, record):
    os.kill(os.getpid(), signal.SIGKILL)

spec = load_spec("digits-autoencoder", sys.argv[2:])
run_experiment(spec, run_dir=Path(sys.argv[1]), hooks=[kill], log=lambda _: None)
"""
RACES = 20


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )

    def send(self, argv: list[str], start: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "start": start}) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the worker died"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


@pytest.mark.slow
def test_two_resumes_at_the_same_instant_train_once(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(killed), *TINY], env=child_env(), timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 1
    workers = [Worker(), Worker()]
    try:
        for worker in workers:  # both warm: replab imported, the digits loaded once
            worker.send(["run", "--resume", str(tmp_path / "none")], 0)
        assert [worker.answer()["code"] for worker in workers] == [2, 2]
        # the uninterrupted run, in a worker too (same threads, same arithmetic)
        workers[0].send(["run", "digits-autoencoder", *TINY, "--runs-dir", str(tmp_path / "u")], 0)
        assert workers[0].answer()["code"] == 0
        (uninterrupted,) = (tmp_path / "u").iterdir()
        expected = metrics_of(uninterrupted)
        for race in range(RACES):
            folder = tmp_path / f"race-{race}"
            shutil.copytree(killed, folder)
            start = time.time() + 1.0
            for worker in workers:
                worker.send(["run", "--resume", str(folder)], start)
            answers = [worker.answer() for worker in workers]
            codes = sorted(a["code"] for a in answers)
            assert codes == [0, 2], answers
            loser = next(a for a in answers if a["code"] == 2)["err"]
            winner_pid = workers[[a["code"] for a in answers].index(0)].proc.pid
            assert "being written by another process" in loser, loser
            assert f"pid {winner_pid} on" in loser, loser
            assert "Traceback" not in loser
            records = [json.loads(line) for line in (folder / "metrics.jsonl").open()]
            assert [r["epoch"] for r in records] == [1, 2]  # each epoch once
            assert metrics_of(folder) == expected
            assert not list(folder.rglob(".*.tmp")) and not (folder / ".replab.lock").exists()
    finally:
        for worker in workers:
            worker.close()
