"""`replab tune`: search spaces, a real search on digits, pruning, and kill/resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replab.cli import main
from replab.errors import ConfigError
from replab.recipes import load_spec, read_recipe
from replab.search.space import check_space, parse_space, read_space, trial_spec

REPO = Path(__file__).resolve().parents[2]
DEFAULT = "digits-autoencoder"
FAST = ["probe.enabled=false", "analysis.enabled=false"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def study_of(runs: Path) -> Path:
    (study,) = runs.iterdir()
    return study


def trials_of(study: Path) -> list[dict]:
    import optuna

    settings = json.loads((study / "tune.json").read_text())
    loaded = optuna.load_study(
        study_name=settings["study_name"], storage=f"sqlite:///{study / 'optuna.db'}"
    )
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "attrs": t.user_attrs,
        }
        for t in loaded.get_trials()
    ]


# --- the space ---------------------------------------------------------------------------


def test_space_parses_every_type_and_mapping_choices_round_trip():
    space = parse_space(
        {
            "trainer.optimizer": {
                "type": "categorical",
                "choices": [
                    {"name": "adam", "lr": 0.001},
                    {"name": "sgd", "lr": 0.01, "momentum": 0.9},
                ],
            },
            "model.encoder.latent_dim": {"type": "int", "low": 4, "high": 32, "step": 4},
            "trainer.optimizer.weight_decay": {
                "type": "float",
                "low": 1.0e-6,
                "high": 1.0e-3,
                "log": True,
            },
        }
    )
    # blocks first
    assert space.keys == [
        "trainer.optimizer",
        "model.encoder.latent_dim",
        "trainer.optimizer.weight_decay",
    ]
    opt = space.by_key("trainer.optimizer")
    assert opt.encoded and all(isinstance(c, str) for c in opt.stored_choices)
    assert [opt.decode(c) for c in opt.stored_choices] == list(opt.choices)
    spec = trial_spec(
        read_recipe(DEFAULT),
        [],
        {
            "trainer.optimizer": opt.choices[1],
            "model.encoder.latent_dim": 8,
            "trainer.optimizer.weight_decay": 1e-05,
        },
    )
    # the whole block was replaced, then a key inside it tuned; 1e-05 stays a float (not YAML text)
    assert (
        spec.trainer.optimizer.name,
        spec.trainer.optimizer.momentum,
        spec.trainer.optimizer.weight_decay,
    ) == ("sgd", 0.9, 1e-05)
    check_space(read_recipe(DEFAULT), FAST, space)


BAD_SPACES = {
    "low not below high": (
        "trainer.optimizer.lr: {type: float, low: 0.1, high: 0.01}",
        "must be smaller than high",
    ),
    "log with zero low": (
        "trainer.optimizer.lr: {type: float, low: 0.0, high: 0.1, log: true}",
        "log scale needs low > 0",
    ),
    "empty choices": ("trainer.optimizer.name: {type: categorical, choices: []}", "non-empty list"),
    "unknown type": ("trainer.optimizer.lr: {type: uniform, low: 0.1, high: 1}", "type 'uniform'"),
    "unknown field": (
        "trainer.optimizer.lr: {type: float, low: 0.1, high: 1, scale: log}",
        "unknown field(s) 'scale'",
    ),
    "not a mapping": ("- trainer.optimizer.lr", "non-empty mapping"),
    "bad key path": ("'trainer..lr': {type: float, low: 0.1, high: 1}", "not a recipe key path"),
    "float int bounds": (
        "model.encoder.latent_dim: {type: int, low: 2.5, high: 8}",
        "must be an integer",
    ),
    "duplicate choice": (
        "trainer.optimizer.name: {type: categorical, choices: [adam, adam]}",
        "twice",
    ),
    # issue 30: the second entry overwrote the first in every trial
    "one key in two spellings": (
        "trainer.optimizer.lr: {type: float, low: 0.1, high: 1}\n"
        "' trainer.optimizer.lr': {type: float, low: 0.1, high: 1}",
        "'trainer.optimizer.lr' and ' trainer.optimizer.lr' both name it",
    ),
    "a key alone and in a pair": (
        "model.encoder.dropout,model.decoder.dropout: {type: float, low: 0.0, high: 0.5}\n"
        "model.encoder.dropout: {type: float, low: 0.0, high: 0.5}",
        "'model.encoder.dropout' is tuned twice",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_is_a_clear_error(case, tmp_path):
    text, needle = BAD_SPACES[case]
    with pytest.raises(ConfigError, match="Fix") as err:
        read_space(write(tmp_path / "space.yaml", text))
    assert needle in str(err.value)


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        (
            "trainer.optimiser.lr: {type: float, low: 0.001, high: 0.01}",
            "unknown key 'trainer.optimiser'",
        ),
        ("model.encoder.dropuot: {type: float, low: 0.0, high: 0.5}", "'dropuot'"),
        ("trainer.optimizer.name: {type: categorical, choices: [adam, lbfgs]}", "lbfgs"),
        (
            "trainer.optimizer.lr: {type: "
            "float, low: 0.001, high: 0.01}\ntrainer.bogus: {type: int, low: 1, high: 2}",
            "trainer.bogus",
        ),
    ],
)
def test_cli_rejects_a_space_the_recipe_cannot_take_before_any_trial(
    entry, needle, tmp_path, capsys
):
    space = write(tmp_path / "space.yaml", entry)
    code = main(
        [
            "tune",
            DEFAULT,
            *FAST,
            "--space",
            str(space),
            "--trials",
            "2",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2 and "Traceback" not in err and err.startswith("replab: error:") and "Fix:" in err
    )
    assert needle in err, err
    assert not (tmp_path / "runs").exists(), (
        "nothing may be created when the space does not fit the recipe"
    )


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["tune", DEFAULT, "--trials", "2"]) == 2
    assert "--space" in capsys.readouterr().err
    space = write(
        tmp_path / "s.yaml", "trainer.optimizer.lr: {type: float, low: 0.001, high: 0.01}"
    )
    assert (
        main(["tune", DEFAULT, "--space", str(space), "--trials", "0", "--runs-dir", str(tmp_path)])
        == 2
    )
    assert "--trials must be at least 1" in capsys.readouterr().err
    assert main(["tune", "--resume", str(tmp_path)]) == 2
    assert "not a tune study folder" in capsys.readouterr().err


# --- searches ----------------------------------------------------------------------------

SPACE = """\
model.encoder.latent_dim: {type: int, low: 4, high: 32, log: true}
trainer.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
trainer.optimizer:
  type: categorical
  choices: [{name: adam, lr: 0.002}, {name: sgd, lr: 0.05, momentum: 0.9}]
"""


def test_small_search_writes_best_recipe_table_figures_and_report_then_resumes_to_more_trials(
    tmp_path, capsys
):
    space = write(tmp_path / "space.yaml", SPACE)
    runs = tmp_path / "runs"
    args = [
        "tune",
        DEFAULT,
        "trainer.epochs=2",
        *FAST,
        "--space",
        str(space),
        "--trials",
        "3",
        "--runs-dir",
        str(runs),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    study = study_of(runs)
    assert "3 trials finished" in out and "best: trial" in out and str(study / "best.yaml") in out

    trials = trials_of(study)
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    for t in trials:  # each trial is an ordinary run with the trial's values applied
        run = study / f"trial-{t['number']:04d}"
        spec = load_spec(run / "config.yaml")
        assert (
            json.loads((run / "status.json").read_text())["state"] == "finished"
            and (run / "report.html").is_file()
        )
        assert spec.model.encoder.params["latent_dim"] == t["params"]["model.encoder.latent_dim"]
        assert spec.trainer.optimizer.name == json.loads(t["params"]["trainer.optimizer"])["name"]
        assert spec.trainer.optimizer.lr == pytest.approx(t["params"]["trainer.optimizer.lr"])
        assert json.loads((run / "summary.json").read_text())["metrics"][
            "val.loss"
        ] == pytest.approx(t["value"])

    best = min(trials, key=lambda t: t["value"])
    tuned = load_spec(study / "best.yaml")
    assert tuned.model.encoder.params["latent_dim"] == best["params"]["model.encoder.latent_dim"]
    assert tuned.trainer.epochs == 2 and tuned.probe.enabled is False
    rows = list(csv.DictReader((study / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2] and all(
        r["state"] == "complete" for r in rows
    )
    html = (study / "tune.html").read_text()
    for name in ("optimization history", "validation loss per trial", "Best trial"):
        assert name in html
    assert html.count("data:image/png;base64,") == len(list((study / "figures").iterdir())) >= 2
    assert "| trial | state | val.loss |" in (study / "tune.md").read_text()

    # --resume with a higher target adds trials; the finished ones stay as they were
    assert main(["tune", "--resume", str(study), "--trials", "4"]) == 0
    again = trials_of(study)
    assert again[:3] == trials and [t["state"] for t in again] == ["COMPLETE"] * 4
    # 4 complete trials: importances drawn
    assert (study / "figures" / "parameter_importances.png").is_file()


def test_median_pruning_prunes_a_hopeless_trial_and_marks_its_run(tmp_path, capsys):
    # A learning rate of 1e-7 cannot move the loss: once good trials have completed, such a trial is
    # cut after epoch 1. With seed 0 the draws are 0.003, 0.003, 1e-7, 0.003.
    space = write(
        tmp_path / "space.yaml",
        "trainer.optimizer.lr: {type: categorical, choices: [0.005, 0.003, 1.0e-7]}",
    )
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "tune",
                DEFAULT,
                "trainer.epochs=4",
                *FAST,
                "--space",
                str(space),
                "--trials",
                "4",
                "--prune-startup",
                "1",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    study = study_of(runs)
    trials = trials_of(study)
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    assert pruned, [(t["state"], t["params"]) for t in trials]
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials) == 4
    for t in pruned:
        assert t["params"]["trainer.optimizer.lr"] == 1e-7
        status = json.loads((study / f"trial-{t['number']:04d}" / "status.json").read_text())
        assert (
            status["state"] == "pruned"
            and "pruned after epoch" in status["reason"]
            and "error" not in status
        )
    assert "pruned" in (study / "tune.md").read_text()


# --- kill and resume ---------------------------------------------------------------------


def _db_states(db: Path) -> tuple[list[str], int]:
    """Trial states, and how many epochs the running trials have reported
    (read-only, beside the writer)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            states = [s for (s,) in con.execute("SELECT state FROM trials ORDER BY number")]
            epochs = con.execute(
                "SELECT COUNT(*) FROM trial_intermediate_values "
                "v JOIN trials t ON v.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING'"
            ).fetchone()[0]
            return states, epochs
    except sqlite3.Error:
        return [], 0


@pytest.mark.slow
def test_killed_search_resumes_without_losing_or_repeating_a_trial(tmp_path, capsys):
    space = write(
        tmp_path / "space.yaml",
        "model.encoder.latent_dim: {type: int, low: 4, high: 32}\n"
        "trainer.optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}",
    )
    study = tmp_path / "study"
    n = 3
    cmd = [
        sys.executable,
        "-m",
        "replab.cli",
        "tune",
        DEFAULT,
        "trainer.epochs=30",
        *FAST,
        "--space",
        str(space),
        "--trials",
        str(n),
        "--study-dir",
        str(study),
        "--no-prune",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 240
        # kill mid-trial: one trial complete, another some epochs in
        while time.monotonic() < deadline:
            states, epochs = _db_states(study / "optuna.db")
            if "COMPLETE" in states and "RUNNING" in states and epochs >= 3:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.2)
        else:
            pytest.fail("the search never reached a running second trial")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = trials_of(study)
    completed = [t for t in before if t["state"] == "COMPLETE"]
    (killed,) = [t for t in before if t["state"] == "RUNNING"]
    killed_run = study / f"trial-{killed['number']:04d}"
    assert (killed_run / "last.pt").is_file()

    assert main(["tune", "--resume", str(study)]) == 0
    out = capsys.readouterr().out
    after = trials_of(study)
    # unchanged
    assert [t for t in after if t["number"] in {c["number"] for c in completed}] == completed
    assert sum(t["state"] in ("COMPLETE", "PRUNED") for t in after) == n  # exactly N, none lost
    assert after[killed["number"]]["state"] == "FAIL"
    (retry,) = [t for t in after if t["attrs"].get("retry_of") == killed["number"]]
    assert retry["state"] == "COMPLETE" and retry["params"] == killed["params"]
    # the interrupted run folder was continued...
    assert retry["attrs"]["run_dir"] == str(killed_run.resolve())
    assert "resumed after epoch" in out  # ...from its last checkpoint, not retrained from scratch
    assert json.loads((killed_run / "status.json").read_text())["state"] == "finished"
    params = [json.dumps(t["params"], sort_keys=True) for t in after if t["state"] == "COMPLETE"]
    assert len(params) == len(set(params)), "a completed trial was repeated"


def test_a_worker_waits_for_another_workers_last_trial_and_takes_it_over_when_that_worker_dies(
    tmp_path, capsys, monkeypatch
):
    import socket
    import threading

    import optuna

    from replab.search.tune import workers

    monkeypatch.setattr(workers, "WAIT_SECONDS", 0.05)
    space = write(
        tmp_path / "space.yaml",
        "trainer.optimizer.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}",
    )
    study = tmp_path / "study"
    assert (
        main(
            [
                "tune",
                DEFAULT,
                "trainer.epochs=1",
                *FAST,
                "--space",
                str(space),
                "--trials",
                "1",
                "--study-dir",
                str(study),
            ]
        )
        == 0
    )
    # Another worker on this host (a live process) is running trial 1, the last of 2 slots.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        loaded = optuna.load_study(
            study_name=study.name, storage=f"sqlite:///{study / 'optuna.db'}"
        )
        held = loaded.ask()
        loaded._storage.set_trial_user_attr(
            held._trial_id, "worker", f"{socket.gethostname()}:{other.pid}"
        )
        threading.Timer(1.5, lambda: (other.kill(), other.wait())).start()  # ...and dies mid-trial
        assert main(["tune", "--resume", str(study), "--trials", "2"]) == 0
    finally:
        other.kill()
        other.wait()
    out = capsys.readouterr().out
    assert "this worker waits for them" in out  # it did not stop with one trial missing
    assert f"trial {held.number} was left running by a stopped worker" in out
    assert [t["state"] for t in trials_of(study)] == ["COMPLETE", "FAIL", "COMPLETE"]


def test_bundled_e2_space_fits_a_conv_autoencoder_recipe_and_ties_dropout():
    from replab import recipes

    assert "e2-fashion-space" in recipes.space_names() and "e2-fashion-space" not in recipes.names()
    space = read_space("e2-fashion-space")
    assert "model.encoder.dropout,model.decoder.dropout" in space.keys
    raw = read_recipe("a1-cifar10-autoencoder")  # conv encoder + conv_decoder, like E2's
    check_space(raw, [], space)
    spec = trial_spec(
        raw,
        [],
        {"model.encoder.dropout,model.decoder.dropout": 0.25, "trainer.optimizer.name": "sgd"},
    )
    assert spec.model.encoder.params["dropout"] == spec.model.decoder.params["dropout"] == 0.25


# --- points tried first, and refit recipes -----------------------------------------------


def test_enqueued_point_is_the_first_trial_and_only_the_creating_worker_queues_it(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", SPACE)
    runs = tmp_path / "runs"
    point = "{model.encoder.latent_dim: 7, trainer.optimizer: {name: sgd, lr: 0.05, momentum: 0.9}}"
    assert (
        main(
            [
                "tune",
                DEFAULT,
                "trainer.epochs=1",
                *FAST,
                "--space",
                str(space),
                "--trials",
                "2",
                "--runs-dir",
                str(runs),
                "--enqueue",
                point,
            ]
        )
        == 0
    )
    study = study_of(runs)
    first, second = trials_of(study)
    assert (
        first["params"]["model.encoder.latent_dim"] == 7
        and json.loads(first["params"]["trainer.optimizer"])["name"] == "sgd"
    )
    assert first["attrs"].get("enqueued") and not second["attrs"].get("enqueued")
    assert "trainer.optimizer.lr" in first["params"]  # a key the point leaves out is drawn
    assert "queued by --enqueue" in (study / "trials.csv").read_text().splitlines()[1]
    # resuming does not queue the point again
    assert main(["tune", "--resume", str(study), "--trials", "3"]) == 0
    assert [t["attrs"].get("enqueued", False) for t in trials_of(study)] == [True, False, False]


@pytest.mark.parametrize(
    ("point", "needle"),
    [
        ("{model.encoder.hidden: [8]}", "not in the search space"),
        ("{model.encoder.latent_dim: 64}", "outside the search space"),
        ("{model.encoder.latent_dim: 5.5}", "outside the search space"),
        ("{trainer.optimizer: {name: adamw, lr: 0.1}}", "is not one of the choices"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_a_bad_enqueued_point_is_refused_before_any_folder_exists(point, needle, tmp_path, capsys):
    space = write(tmp_path / "space.yaml", SPACE)
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "tune",
                DEFAULT,
                *FAST,
                "--space",
                str(space),
                "--trials",
                "2",
                "--runs-dir",
                str(runs),
                "--enqueue",
                point,
            ]
        )
        == 2
    )
    assert needle in capsys.readouterr().err and not runs.exists()


def test_tune_refuses_a_refit_recipe_whose_validation_images_are_trained_on(tmp_path, capsys):
    space = write(tmp_path / "space.yaml", SPACE)
    args = [
        "tune",
        DEFAULT,
        "data.refit=true",
        "trainer.keep=last",
        *FAST,
        "--space",
        str(space),
        "--trials",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 2
    assert "data.refit" in capsys.readouterr().err and not (tmp_path / "runs").exists()


@pytest.mark.heavy(20)
def test_an_invalid_combination_fails_its_trial_and_the_search_goes_on(tmp_path, capsys):
    """Issue 30: the space's corners are checked before any trial, not every combination of its
    values; one that does not validate (here data.refit with trainer.keep=best, queued first)
    failed the whole search. Now that trial fails with its reason and the others run."""
    space = write(
        tmp_path / "space.yaml",
        "trainer.keep: {type: categorical, choices: [last, best]}\n"
        "data.refit: {type: categorical, choices: [true, false]}\n",
    )
    study = tmp_path / "study"
    args = ["tune", DEFAULT, "trainer.epochs=1", "trainer.early_stopping=null", *FAST]
    args += ["--space", str(space), "--trials", "2", "--study-dir", str(study)]
    args += ["--enqueue", "{trainer.keep: best, data.refit: true}", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 trials finished (2 complete, 1 fail)" in out
    assert "[trial 0] failed, its values do not fit together" in out
    with open(study / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["fail", "complete", "complete"]
    assert rows[0]["note"].startswith('invalid combination: with trainer.keep="best"')
    assert "data.refit" in rows[0]["note"] and len(rows[0]["note"]) < 400
    assert rows[0]["run_dir"] == "" and not (study / "trial-0000").exists()
    trials = trials_of(study)
    assert trials[0]["state"] == "FAIL" and "data.refit" in trials[0]["attrs"]["error"]
    assert "invalid combination" in (study / "tune.html").read_text()


def test_a_trial_given_back_in_a_race_is_no_failure():
    """Two workers that ask at once for the last of N slots: the higher trial number gives its
    trial back. It never trained, so the summary counts no failure (the table notes it)."""
    import optuna

    from replab.search.space import parse_space as parse
    from replab.search.tune.outputs import trial_counts, trial_rows
    from replab.search.tune.workers import surplus

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    first, second, third = study.ask(), study.ask(), study.ask()
    assert not surplus(study, second, 2)  # one running before it: the second slot is its own
    assert surplus(study, third, 2)  # two running before it: N = 2 is taken
    study.tell(first, 1.0)
    study.tell(second, 2.0)
    assert trial_counts(study) == {"complete": 2}
    rows = trial_rows(study, parse({"seed": {"type": "int", "low": 0, "high": 9}}))
    assert rows[2]["state"] == "fail" and "another worker took the last slot" in rows[2]["note"]
