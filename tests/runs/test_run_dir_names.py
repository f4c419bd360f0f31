"""Runs started in the same second each get their own folder (benchmarks/concurrency.py found
three `replab run`s started together colliding on one name)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from replab.recipes import read_recipe
from replab.runs import rundir
from replab.spec import validate_spec


def test_runs_started_in_one_second_get_distinct_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt, *a: "20261201-174207")
    spec = validate_spec({**read_recipe("digits-autoencoder"), "name": "a1"})
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: rundir.new_run_dir(tmp_path, spec), range(16)))
    assert len(set(folders)) == 16
    names = sorted(f.name for f in folders)
    assert "a1-20261201-174207" in names and "a1-20261201-174207-16" in names
    assert all((f / rundir.CONFIG).is_file() for f in folders)
