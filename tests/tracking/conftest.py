"""Real tracking servers on loopback for the tests: started in a fixture, polled until they
answer, always terminated."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return response.read()


@contextmanager
def server(command: list[str], ready_url: str, log: Path, wait: float = 120) -> Iterator[None]:
    """Run ``command`` until ``ready_url`` answers; terminate it (and its workers) after."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + wait
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{command[0]} exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                get(ready_url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{command[0]} did not answer in {wait} s: {log.read_text()[-2000:]}"
                    )
                time.sleep(0.5)
        yield
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    import os
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own group: its workers too
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def mlflow_server(tmp_path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of an MLflow server with a SQLite store in tmp_path."""
    pytest.importorskip("mlflow")
    port = free_port()
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/health", tmp_path / "mlflow-server.log"):
        yield url
