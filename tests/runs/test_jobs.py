"""--jobs N (issue 19): runs in worker processes give the same metrics as --jobs 1, run for run.

Both sides run with --threads 1: a float sum split over another number of threads may differ
in its last bits, and the point here is where a run trains, not how many threads it has.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from replab.cli import main
from replab.errors import ReplabError
from replab.runs.pool import check_jobs

SWEEP = [
    "sweep",
    "digits-autoencoder",
    "--over",
    "model.encoder.latent_dim=[4,8,16]",
    "trainer.epochs=2",
    "analysis.enabled=false",
    "probe.trainer.epochs=3",
    "--threads",
    "1",
]


def metrics_by_run(folder: Path) -> dict[str, dict]:
    return {
        str(p.parent.relative_to(folder)): json.loads(p.read_text())["metrics"]
        for p in sorted(folder.rglob("summary.json"))
    }


def only_folder(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    return folder


@pytest.mark.heavy(13)  # seconds on one thread: tests/scheduling.py
def test_sweep_with_two_jobs_equals_one_job_run_for_run(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*SWEEP, "--jobs", "1", "--runs-dir", str(one)]) == 0
    capsys.readouterr()
    assert main([*SWEEP, "--jobs", "2", "--runs-dir", str(two)]) == 0
    out = capsys.readouterr().out
    a, b = metrics_by_run(only_folder(one)), metrics_by_run(only_folder(two))
    assert len(a) == 3 and a == b
    # one line per finished run with the pool's progress; the workers print nothing else
    assert out.count("runs done, 2 jobs") == 3
    assert "3/3 runs done" in out
    assert "epoch   1/2" not in out


@pytest.mark.data
@pytest.mark.heavy(18)  # seconds on one thread: tests/scheduling.py
def test_study_with_two_jobs_equals_one_job_run_for_run(tmp_path, data_dir, capsys):
    """Study D's four parts are independent: they train side by side, and the report is the
    same as when they train one after the other."""
    argv = ["study", "d", "--quick", "--data-dir", str(data_dir), "--threads", "1"]
    assert main([*argv, "--jobs", "1", "--runs-dir", str(tmp_path / "one")]) == 0
    assert main([*argv, "--jobs", "2", "--runs-dir", str(tmp_path / "two")]) == 0
    a = metrics_by_run(only_folder(tmp_path / "one"))
    b = metrics_by_run(only_folder(tmp_path / "two"))
    assert sorted(a) == ["D1/seed0", "D2/seed0", "D3/seed0", "D4/seed0"]
    assert a == b
    assert capsys.readouterr().out.count("runs done, 2 jobs") == 4


def test_parts_that_read_an_earlier_part_wait_for_it(tmp_path):
    """Part.run_dirs waits for the part's runs: a part started from them comes after."""
    from replab.studies.framework import Part

    calls = []

    def wait():
        calls.append("waited")
        return [{"metrics": {"m": 1.0}, "timings": {"total": 1.0}}]

    part = Part("X", "x", [tmp_path / "X" / "seed0"], None, {}, wait)
    assert calls == []
    assert part.run_dirs == [tmp_path / "X" / "seed0"] and calls == ["waited"]
    assert part.values("m") == [1.0] and calls == ["waited"]  # once


@pytest.mark.parametrize("bad", [0, -2, 1000])
def test_jobs_out_of_range(bad):
    with pytest.raises(ReplabError, match="--jobs"):
        check_jobs(bad)


def test_jobs_flag_must_be_a_count(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", "digits-autoencoder", "--over", "seed=[0]", "--jobs", "0"])
    assert exit_.value.code == 2
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.heavy(18)  # seconds on one thread: tests/scheduling.py
def test_tune_with_two_jobs_finishes_exactly_n_trials(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("model.encoder.latent_dim: {type: int, low: 4, high: 16}\n")
    argv = ["tune", "digits-autoencoder", "--space", str(space), "--trials", "3", "--jobs", "2"]
    extra = ["trainer.epochs=2", "probe.enabled=false", "analysis.enabled=false"]
    study = tmp_path / "study"
    assert main([*argv, *extra, "--threads", "1", "--study-dir", str(study)]) == 0
    out = capsys.readouterr().out
    assert "3 trials finished (3 complete)" in out
    assert out.count(" complete: val.loss") == 3  # one line per trial, from the workers
    assert len(list(study.glob("trial-*/summary.json"))) == 3
    assert (study / "best.yaml").is_file()


def _environment_variable(name: str) -> str | None:
    return os.environ.get(name)


def test_workers_see_the_parents_environment_of_now(monkeypatch):
    """Workers fork from a server that keeps the environment it started with; each pool hands
    its workers the parent's current one (a notebook or test that changes REPLAB_CACHE, say)."""
    from replab.runs.pool import RunPool

    for value in ("first", "second"):
        monkeypatch.setenv("REPLAB_TEST_VALUE", value)
        pool = RunPool(2, log=lambda _: None)
        try:
            seen = pool.executor.submit(_environment_variable, "REPLAB_TEST_VALUE").result()
        finally:
            pool.close()
        assert seen == value
