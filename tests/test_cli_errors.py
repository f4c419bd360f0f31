"""Bad input gives one paragraph naming the problem and the fix, exit code 2, no traceback,
and leaves existing runs untouched. Extend CASES to cover a new kind of bad input."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import pytest

from replab.cli import main


@pytest.fixture
def existing_run(tmp_path):
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                "trainer.epochs=1",
                "probe.enabled=false",
                "analysis.enabled=false",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    (run,) = runs.iterdir()
    snapshot = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    yield runs, run
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == snapshot, (
        "an existing run was modified"
    )


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err
    return code, err


CASES = {
    "misspelled key": (["trainer.epocs=3"], ["unknown key 'trainer.epocs'", "epochs"]),
    "wrong type": (["trainer.batch_size=lots"], ["trainer.batch_size", "integer"]),
    "negative learning rate": (
        ["trainer.optimizer.lr=-0.001"],
        ["trainer.optimizer.lr", "greater than 0"],
    ),
    "unknown model": (["model.encoder.name=transformer"], ["unknown model 'transformer'", "mlp"]),
    "unknown model param": (["model.encoder.depth=3"], ["unknown key", "'depth'", "hidden"]),
    "unknown dataset": (["data.dataset=imagenet"], ["unknown dataset 'imagenet'", "mnist"]),
    "absurd epochs": (["trainer.epochs=10000000000"], ["trainer.epochs"]),
    "bad override syntax": (["a1-mnist-autoencoder", "trainer.epochs:3"], ["key.path=value"]),
    "missing recipe file": (["no/such/recipe.yaml"], ["does not exist"]),
    "cuda without a gpu": (["data.device=cuda:7"], ["cuda"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_clear_error(case, existing_run, capsys):
    runs, _ = existing_run
    args, needles = CASES[case]
    code, err = run_cli(["run", *args, "--runs-dir", str(runs)], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("replab: error:") and "Fix:" in err
    for needle in needles:
        assert needle.lower() in err.lower(), (needle, err)


def test_missing_dataset_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    monkeypatch.setenv("REPLAB_MIRROR", "http://127.0.0.1:1/")
    code, err = run_cli(
        [
            "run",
            "a1-mnist-autoencoder",
            f"data.root={tmp_path / 'empty'}",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capsys,
    )
    assert code == 2
    assert "MNIST was not found" in err and "downloading it failed" in err and "REPLAB_DATA" in err


@pytest.mark.data
def test_truncated_dataset_file(tmp_path, data_dir, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (data_dir / "MNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)
    labels = gzip.decompress((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:5000]))
    code, err = run_cli(
        [
            "run",
            "a1-mnist-autoencoder",
            f"data.root={tmp_path}",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capsys,
    )
    assert code == 2
    assert "t10k-labels-idx1-ubyte.gz" in err and "truncated or corrupt" in err


def test_checkpoint_from_another_model(existing_run, tmp_path, capsys):
    _, run = existing_run
    other = tmp_path / "other"
    other.mkdir()
    config = (run / "config.yaml").read_text().replace("latent_dim: 32", "latent_dim: 7")
    assert "latent_dim: 7" in config
    (other / "config.yaml").write_text(config)
    shutil.copy(run / "last.pt", other / "last.pt")
    code, err = run_cli(["run", "--resume", str(other)], capsys)
    assert code == 2
    assert "does not fit this model" in err and "config.yaml" in err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, err = run_cli(["run", "--resume", str(tmp_path)], capsys)
    assert code == 2 and "not a replab run folder" in err


def test_no_traceback_from_the_real_process(tmp_path):
    """The installed entry point, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "replab.cli", "run", "trainer.epocs=3", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown key 'trainer.epocs'" in proc.stderr
    assert not any(tmp_path.iterdir()), "a failed config must not create a run folder"


def test_overrides_may_follow_options(tmp_path):
    # argparse alone rejects positionals after options; replab takes KEY=VALUE ones as overrides
    from replab.cli import main

    assert (
        main(
            [
                "run",
                "--runs-dir",
                str(tmp_path),
                "trainer.epochs=1",
                "probe.enabled=false",
                "analysis.enabled=false",
            ]
        )
        == 0
    )
    (run,) = tmp_path.iterdir()
    assert "epochs: 1\n" in (run / "config.yaml").read_text()


def test_every_command_reads_data_dir_as_data_root_and_leaves_runs_dir_to_the_api(
    tmp_path, monkeypatch, capsys
):
    """--data-dir DIR is data.root=DIR for every command, the folder name taken literally and
    applied last; --runs-dir left out reaches replab.api as None (api.default_runs_dir())."""
    from replab import api
    from replab.errors import ReplabError

    seen = {}

    def stop(name):
        def call(*args, **kwargs):
            seen[name] = (args, kwargs)
            raise ReplabError("stopped by the test", "nothing to fix")

        return call

    for name in ("run", "tune", "analyze", "study"):
        monkeypatch.setattr(api, name, stop(name))
    folder = "null"  # read as YAML it would be no folder at all
    tune = ["tune", "digits-autoencoder", "--space", "s.yaml", "--trials", "1"]
    for args in (
        ["run", "data.root=elsewhere"],
        tune,
        ["analyze", "enc.ts"],
        ["study", "b"],
    ):
        assert main([*args, "--data-dir", folder]) == 2
        assert "stopped by the test" in capsys.readouterr().err
    root = f'data.root="{folder}"'
    for name in ("run", "tune", "analyze"):
        assert seen[name][0][-1] == root, name  # after every KEY=VALUE, so it wins
    assert seen["study"][1]["data_dir"] == folder  # the study sets each part's data.root
    assert all(kwargs["runs_dir"] is None for _, kwargs in seen.values())
    # as --resume takes no recipe or override, it takes no --data-dir either
    for args in (["run", "--resume"], ["tune", "--resume"], ["study", "--resume"]):
        assert main([*args, str(tmp_path), "--data-dir", folder]) == 2
        assert "--resume continues a" in capsys.readouterr().err
