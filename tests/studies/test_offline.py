"""`replab study g --quick` on a machine that cannot download (issue 34, point 4): its help
says the default dataset, the error's fix names the dataset that needs no download, and no
empty study folder is left behind when the study fails before its first part."""

from __future__ import annotations

import socket

import pytest

from replab.cli import main


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_help_states_study_gs_default_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "study g: any dataset replab reads (default mnist" in text
    assert "digits needs no download" in text


def test_offline_study_g_leaves_no_folder_and_names_digits(tmp_path, monkeypatch, capsys):
    # offline: every download goes to a loopback port nothing listens on; the cache is empty
    # and REPLAB_DATA unset (tests/conftest.py), so MNIST can be found nowhere
    monkeypatch.setenv("REPLAB_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    runs = tmp_path / "runs"
    assert main(["study", "g", "--quick", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "MNIST was not found" in err, err
    assert "the digits dataset, which needs no download" in err and "--dataset digits" in err
    assert not runs.exists(), list(runs.rglob("*"))


def test_only_the_failed_studys_own_folder_goes(tmp_path, monkeypatch, capsys):
    """A runs folder that existed before, and what else it holds, stay."""
    monkeypatch.setenv("REPLAB_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "other").mkdir()
    assert main(["study", "g", "--quick", "--runs-dir", str(runs)]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in runs.iterdir()) == ["other"]
