"""Shared fixtures. Real datasets come from $REPLAB_DATA (CI: ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# the order parallel workers take the suite in (`make test`): heavy tests first on each
from tests.scheduling import pytest_collection_modifyitems, pytest_configure  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    candidates = [os.environ.get("REPLAB_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MNIST").is_dir():
            return Path(candidate).resolve()
    return None


# Read once at import, before the per-test environment below hides $REPLAB_DATA.
SHARED_DATA = shared_data_dir()


def _share_cpus_between_xdist_workers() -> None:
    """Under pytest-xdist (`make test` runs `-n N`) each worker gets its N-th of the CPUs:
    N processes with torch's default threads each would fight over the cores (issue 19
    measured 4.5x slower on 2 cores). The runs a test starts, in this process or in a
    subprocess, read REPLAB_THREADS; OMP_NUM_THREADS covers the other subprocesses."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 1:
        return
    import torch

    from replab.io import limit_native_threads
    from replab.training.threads import available_cpus

    share = max(1, available_cpus() // workers)
    torch.set_num_threads(share)
    limit_native_threads(share)  # numpy's OpenBLAS, loaded with torch, started a thread per core
    os.environ.setdefault("REPLAB_THREADS", str(share))
    os.environ.setdefault("OMP_NUM_THREADS", str(share))


_share_cpus_between_xdist_workers()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding MNIST, FashionMNIST and cifar10-mini; skips
    (with the reason) if absent."""
    found = SHARED_DATA
    if found is None:
        pytest.skip(
            "datasets not found: set REPLAB_DATA to the folder holding MNIST/, "
            "FashionMNIST/ and cifar10-mini/"
        )
    return found


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty download cache and no inherited mirror or data folder:
    a test that needs the datasets asks for the ``data_dir`` fixture."""
    monkeypatch.setenv("REPLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("REPLAB_MIRROR", raising=False)
    monkeypatch.delenv("REPLAB_DATA", raising=False)
