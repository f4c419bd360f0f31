"""Shared fixtures. Real datasets come from $REPLAB_DATA (CI: ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    candidates = [os.environ.get("REPLAB_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MNIST").is_dir():
            return Path(candidate).resolve()
    return None


# Read once at import, before the per-test environment below hides $REPLAB_DATA.
SHARED_DATA = shared_data_dir()


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
