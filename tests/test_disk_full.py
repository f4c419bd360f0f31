"""A full disk while writing a checkpoint or report: a clear error, exit 2, and the previous
file intact (atomic writes go to a temp file that is removed, never over the old one)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from replab.cli import main
from replab.errors import DiskFullError
from replab.io import TMP_SUFFIX, atomic_write_bytes, load_checkpoint
from replab.runs import rundir

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="finds the file behind a descriptor in /proc"
)


class FullDisk:
    """Wraps a file opened for writing: half of the first write lands, then ENOSPC."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def fill_disk(monkeypatch, fails) -> list[str]:
    """From now on, writes through ``os.fdopen`` to a temp file for which ``fails(final_name)`` is
    true hit a full disk; returns the list of final names that failed."""
    real = os.fdopen
    failed: list[str] = []

    def fdopen(fd, *args, **kwargs):
        f = real(fd, *args, **kwargs)
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name  # .<final name>.<random>.tmp
        final = name[1:].rsplit(".", 2)[0] if name.endswith(TMP_SUFFIX) else name
        if "w" in (args[0] if args else kwargs.get("mode", "r")) and fails(final):
            failed.append(final)
            return FullDisk(f)
        return f

    monkeypatch.setattr(os, "fdopen", fdopen)
    return failed


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(f"*{TMP_SUFFIX}")]


def test_atomic_write_keeps_the_old_file_on_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old checkpoint" * 1000)
    fill_disk(monkeypatch, lambda name: True)
    with pytest.raises(DiskFullError) as err:
        atomic_write_bytes(path, b"new checkpoint" * 5000)
    assert path.read_bytes() == b"old checkpoint" * 1000
    assert not temp_files(tmp_path)
    assert (
        "disk is full while writing" in err.value.message
        and "intact" in err.value.message
        and "Fix:" in err.value.message
    )


@pytest.mark.parametrize(
    "everything_after", [False, True], ids=["checkpoint only", "every write after it"]
)
def test_full_disk_mid_run_keeps_the_last_checkpoint_and_resumes(
    tmp_path, monkeypatch, capsys, everything_after
):
    """The third epoch's last.pt hits a full disk: exit 2 with the fix, epoch 2's last.pt intact."""
    runs = tmp_path / "runs"
    saved: dict[str, bytes] = {}
    seen = {"last.pt": 0}

    def fails(name: str) -> bool:
        if seen.get("full"):
            return everything_after
        if name == "last.pt":
            seen["last.pt"] += 1
            if seen["last.pt"] == 3:
                (run,) = runs.iterdir()
                saved["last.pt"] = (run / "last.pt").read_bytes()
                seen["full"] = True
                return True
        return False

    failed = fill_disk(monkeypatch, fails)
    code = main(
        [
            "run",
            "trainer.epochs=4",
            "trainer.progress=false",
            "probe.enabled=false",
            "analysis.enabled=false",
            "--runs-dir",
            str(runs),
        ]
    )
    err = capsys.readouterr().err
    (run,) = runs.iterdir()
    assert code == 2 and failed[0] == "last.pt"
    assert "Traceback" not in err
    assert f"disk is full while writing {run / 'last.pt'}" in err and "intact" in err
    assert f"replab run --resume {run}" in err
    assert (run / "last.pt").read_bytes() == saved["last.pt"]
    assert len(load_checkpoint(run / "last.pt")["history"]) == 2
    assert not temp_files(run)
    status = json.loads((run / rundir.STATUS).read_text())
    if everything_after:  # status.json could not be written either: it still names this process
        assert status["state"] == "running" and status["pid"] == os.getpid()
    else:
        assert status["state"] == "failed" and "disk is full" in status["error"]

    monkeypatch.undo()  # space freed
    assert main(["run", "--resume", str(run)]) == 0
    assert json.loads((run / rundir.SUMMARY).read_text())["epochs"] == 4


def test_full_disk_while_writing_the_report(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    failed = fill_disk(monkeypatch, lambda name: name == rundir.REPORT)
    code = main(
        [
            "run",
            "trainer.epochs=1",
            "probe.enabled=false",
            "analysis.enabled=false",
            "--runs-dir",
            str(runs),
        ]
    )
    err = capsys.readouterr().err
    (run,) = runs.iterdir()
    assert code == 2 and failed == [rundir.REPORT]
    assert "Traceback" not in err and "report.html" in err and "--resume" in err
    assert not (run / rundir.REPORT).exists() and not temp_files(run)
