"""Kuzushiji-MNIST, the dataset added as one file (replab/data/kmnist.py; docs/adding.md).

Its IDX files are written here in the real format (gzip, big-endian headers), served from a
loopback HTTP server as the official mirror would, downloaded through REPLAB_MIRROR with
their checksums verified, then loaded and split like any dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from replab.cli import main
from replab.data import DATASETS, cache_dir, load_splits
from replab.data.kmnist import KMNIST
from replab.errors import DataError
from tests.data.test_download import serve  # noqa: F401  (the loopback server fixture)

COUNTS = {"train": 200, "t10k": 50}


def write_idx(folder: Path, prefix: str, n: int, rng: np.random.Generator) -> None:
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(header + images.tobytes())
    )
    header = struct.pack(">BBBBI", 0, 0, 8, 1, n)
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(header + labels.tobytes())
    )


@pytest.fixture
def mirror(tmp_path, serve, monkeypatch):  # noqa: F811
    folder = tmp_path / "mirror"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in COUNTS.items():
        write_idx(folder, prefix, n, rng)
    url, requested = serve(folder)
    monkeypatch.setenv("REPLAB_MIRROR", url)
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    return folder, requested


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_kmnist_downloads_verifies_and_splits(mirror, monkeypatch):
    folder, requested = mirror
    served = tuple(type(r)(r.filename, md5(folder / r.filename)) for r in KMNIST.resources)
    monkeypatch.setattr(KMNIST, "resources", served)
    splits = load_splits("kmnist", root=None, download=True, val_fraction=0.1, seed=0)
    assert sorted(requested) == sorted(f"/{r.filename}" for r in served)
    assert (cache_dir() / "KMNIST" / "raw").is_dir()
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (200, 50)
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert splits.test.classes == ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
    assert splits.test.labels.bincount().tolist() == [5] * 10


def test_kmnist_refuses_files_that_do_not_match_the_official_checksums(mirror):
    with pytest.raises(DataError, match="md5"):
        load_splits("kmnist", root=None, download=True)
    assert not any(cache_dir().rglob("*.gz"))


def test_kmnist_is_registered_and_listed(capsys):
    assert "kmnist" in DATASETS.names()
    assert main(["datasets"]) == 0
    assert "Kuzushiji-MNIST" in capsys.readouterr().out
