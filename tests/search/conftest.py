"""A throwaway PostgreSQL server for the many-worker `replab tune` tests.

``.ci/run`` installs Debian's ``postgresql`` package when it can; without it (or without
psycopg2) the tests that ask for ``postgres_url`` skip with the reason. PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or in Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = [
        p
        for p in glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
        if Path(p).parent.parent.name.isdigit()
    ]
    return max(versions, key=lambda p: int(Path(p).parent.parent.name), default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg2://replab@127.0.0.1:PORT/optuna`` on a fresh
    server, removed afterwards."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip(
            "psycopg2 is not installed: pip install psycopg2-binary (it is in the dev extra)"
        )
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(
            "PostgreSQL is not installed "
            "(initdb/pg_ctl not found): apt-get install postgresql, or run .ci/run as root"
        )
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server will not run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(
                "running as root and there is no `postgres` user to run the PostgreSQL server as"
            )
        if not shutil.which("runuser"):
            pytest.skip(
                "running as root and `runuser` is missing: "
                "cannot start PostgreSQL as the postgres user"
            )
        prefix = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="replab-pg-"))  # /tmp, so the server's user can reach it
    if prefix:
        os.chown(home, user.pw_uid, user.pw_gid)
    data, sockets, port = home / "data", home / "sock", _free_port()

    def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120, **kw)

    started = False
    try:
        made = run(
            initdb, "-D", str(data), "-U", "replab", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        if made.returncode:
            pytest.skip(f"initdb failed: {(made.stderr or made.stdout).strip()[-400:]}")
        run("mkdir", str(sockets))
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} "
            "-c fsync=off -c max_connections=50"
        )
        up = run(
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(home / "server.log"),
            "-o",
            opts,
            "-w",
            "-t",
            "60",
            "start",
        )
        if up.returncode:
            log = (
                (home / "server.log").read_text(errors="replace")
                if (home / "server.log").exists()
                else ""
            )
            pytest.skip(
                f"PostgreSQL did not start: {(up.stderr or up.stdout).strip()[-300:]} {log[-300:]}"
            )
        started = True
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=port, user="replab", dbname="postgres")
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE optuna")
        con.close()
        import optuna

        # Optuna's tables, made once here: workers (and the tests reading the study) all starting on
        # an empty database would race to create them.
        optuna.storages.RDBStorage(f"postgresql+psycopg2://replab@127.0.0.1:{port}/optuna")
        yield f"postgresql+psycopg2://replab@127.0.0.1:{port}/optuna"
    finally:
        if started:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)
