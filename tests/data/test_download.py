"""The real download code (urllib, md5 check, atomic rename, tar extraction) against a
real HTTP server on 127.0.0.1.

The served MNIST files are the ones in the shared data folder, read in place. They hold
the original bytes but are not byte-identical to the published downloads (see the data
README), so their md5 differs from the official md5s the sources carry. Tests that want a
successful download therefore pass the md5s of the *served* files (``checksums=``, the
documented override), and one test checks that the official md5s are really enforced when
no override is given.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from replab.data import cache_dir, load_splits
from replab.data.cifar10 import CIFAR10
from replab.data.mnist import MNIST
from replab.errors import DataError

MNIST_FILES = [r.filename for r in MNIST.resources]
DEAD = "http://127.0.0.1:1/"  # nothing listens on port 1: connection refused at once
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# stratified_split rounds each class's share separately: 10% of MNIST train is 5,999 images.
MNIST_VAL = sum(round(0.1 * n) for n in MNIST_TRAIN_COUNTS)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


@pytest.fixture
def serve():
    """``serve(folder) -> (base_url, requested_paths)``: a loopback HTTP server per call."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(folder: Path) -> tuple[str, list[str]]:
        requested: list[str] = []
        handler = type("Handler", (_QuietHandler,), {"requests": requested})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/", requested

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def mnist_raw(data_dir) -> Path:
    return data_dir / "MNIST" / "raw"


@pytest.fixture
def served_md5(mnist_raw) -> dict[str, str]:
    return {name: md5_of(mnist_raw / name) for name in MNIST_FILES}


def test_mnist_download_fetches_all_four_files_then_loads_from_cache(serve, mnist_raw, served_md5):
    url, requested = serve(mnist_raw)
    cache = cache_dir()
    assert leftovers(cache) == []

    folder = MNIST().download(cache, mirrors=[url], checksums=served_md5)

    assert folder == cache / "MNIST" / "raw"
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    assert leftovers(cache) == sorted(f"MNIST/raw/{name}" for name in MNIST_FILES)  # no .part left
    for name in MNIST_FILES:
        assert md5_of(folder / name) == served_md5[name]

    # A second download finds the verified files in the cache and asks the server for nothing.
    MNIST().download(cache, mirrors=[url], checksums=served_md5)
    assert len(requested) == 4

    # load_splits with no root and no REPLAB_DATA finds the files in the cache.
    splits = load_splits("mnist", root=None, download=False, val_fraction=0.1, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (
        60_000 - MNIST_VAL,
        MNIST_VAL,
        10_000,
    )
    assert splits.train.images.shape[1:] == (1, 28, 28)
    assert str(cache) in splits.test.source
    assert splits.test.labels.bincount().tolist() == MNIST_TEST_COUNTS
    assert (
        splits.train.labels.bincount() + splits.val.labels.bincount()
    ).tolist() == MNIST_TRAIN_COUNTS


def test_load_splits_downloads_through_replab_mirror(serve, mnist_raw, served_md5, monkeypatch):
    """End to end through load_splits(download=True): REPLAB_MIRROR replaces the official
    mirrors and the files land in REPLAB_CACHE. load_splits always checks the source's own
    md5s, and the served files are not byte-identical to the published ones, so the
    source's resources are swapped for the served files' md5s (same names); everything
    else (mirror override, fetch, verify, rename, locate, read) is the real code."""
    url, requested = serve(mnist_raw)
    monkeypatch.setenv("REPLAB_MIRROR", url)
    monkeypatch.delenv("REPLAB_DATA", raising=False)
    monkeypatch.setattr(
        MNIST,
        "resources",
        tuple(type(r)(r.filename, served_md5[r.filename]) for r in MNIST.resources),
    )

    splits = load_splits("mnist", root=None, download=True, val_fraction=0.1, seed=0)

    assert len(requested) == 4
    assert leftovers(cache_dir()) == sorted(f"MNIST/raw/{name}" for name in MNIST_FILES)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (
        60_000 - MNIST_VAL,
        MNIST_VAL,
        10_000,
    )


def test_load_splits_enforces_the_official_md5(serve, mnist_raw, monkeypatch):
    """Without an override, the official md5 is what a download must match: the shared
    (recompressed) file is refused, and nothing is left in the cache."""
    url, _ = serve(mnist_raw)
    monkeypatch.setenv("REPLAB_MIRROR", url)
    monkeypatch.delenv("REPLAB_DATA", raising=False)

    with pytest.raises(DataError) as info:
        load_splits("mnist", root=None, download=True)

    message = str(info.value)
    official = MNIST.resources[0].md5
    assert "checksum mismatch" in message
    assert f"expected md5 {official}" in message
    assert f"got {md5_of(mnist_raw / MNIST_FILES[0])}" in message
    assert leftovers(cache_dir()) == []


def test_corrupt_download_fails_checksum_and_leaves_no_file(serve, mnist_raw, served_md5, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MNIST_FILES:
        (mirror / name).symlink_to(mnist_raw / name)
    bad_name = "train-labels-idx1-ubyte.gz"
    (mirror / bad_name).unlink()
    data = bytearray((mnist_raw / bad_name).read_bytes())
    for i in range(100, 110):
        data[i] ^= 0xFF
    (mirror / bad_name).write_bytes(bytes(data))
    corrupt_md5 = md5_of(mirror / bad_name)
    assert corrupt_md5 != served_md5[bad_name]
    url, requested = serve(mirror)
    cache = cache_dir()

    with pytest.raises(DataError) as info:
        MNIST().download(cache, mirrors=[url], checksums=served_md5)

    message = str(info.value)
    assert "checksum mismatch" in message
    assert bad_name in message
    assert f"expected md5 {served_md5[bad_name]}" in message
    assert f"got {corrupt_md5}" in message
    # The file before it was verified and kept; the corrupt one left neither .part nor final file.
    assert leftovers(cache) == ["MNIST/raw/train-images-idx3-ubyte.gz"]
    assert requested == ["/train-images-idx3-ubyte.gz", "/" + bad_name]


def test_unreachable_and_missing_mirrors_fall_through_to_a_working_one(
    serve, mnist_raw, served_md5, tmp_path
):
    empty = tmp_path / "empty"
    empty.mkdir()
    url_404, requested_404 = serve(empty)
    url, requested = serve(mnist_raw)
    cache = cache_dir()

    folder = MNIST().download(cache, mirrors=[DEAD, url_404, url], checksums=served_md5)

    assert len(requested_404) == 4  # each file was asked of the 404 mirror first
    assert sorted(requested) == sorted("/" + name for name in MNIST_FILES)
    assert leftovers(cache) == sorted(f"MNIST/raw/{name}" for name in MNIST_FILES)
    for name in MNIST_FILES:
        assert md5_of(folder / name) == served_md5[name]


def test_all_mirrors_unreachable_names_the_file():
    cache = cache_dir()
    other_dead = "http://127.0.0.1:9/"  # discard port; nothing listens here either

    with pytest.raises(DataError) as info:
        MNIST().download(cache, mirrors=[DEAD, other_dead])

    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert DEAD + "train-images-idx3-ubyte.gz" in message
    assert other_dead + "train-images-idx3-ubyte.gz" in message
    assert leftovers(cache) == []


def _tar_gz(
    path: Path, members: dict[str, Path | bytes], symlinks: dict[str, str] | None = None
) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for arcname, content in members.items():
            if isinstance(content, Path):
                tar.add(content, arcname=arcname)
            else:
                info = tarfile.TarInfo(arcname)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        for arcname, target in (symlinks or {}).items():
            info = tarfile.TarInfo(arcname)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def test_cifar10_download_extracts_and_loads(serve, data_dir, tmp_path):
    batches = data_dir / "cifar10-mini" / "cifar-10-batches-py"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = _tar_gz(
        mirror / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{p.name}": p for p in sorted(batches.iterdir())},
    )
    url, requested = serve(mirror)
    cache = cache_dir()

    folder = CIFAR10().download(
        cache, mirrors=[url], checksums={"cifar-10-python.tar.gz": md5_of(archive)}
    )

    assert requested == ["/cifar-10-python.tar.gz"]
    assert folder == cache / "cifar-10-batches-py"
    for p in batches.iterdir():
        assert (folder / p.name).read_bytes() == p.read_bytes()
    train = CIFAR10().load_split(folder, "train")
    test = CIFAR10().load_split(folder, "test")
    assert (len(train), len(test)) == (5_170, 1_017)
    assert train.images.shape == (5_170, 3, 32, 32)
    assert "a subset of the full 50,000" in train.source


@pytest.mark.parametrize(
    "members, symlinks",
    [
        ({"../evil": b"pwned"}, None),
        ({"cifar-10-batches-py/../../evil": b"pwned"}, None),
        ({}, {"cifar-10-batches-py/evil": "../../evil"}),
        ({}, {"cifar-10-batches-py/evil": "/etc/passwd"}),
    ],
    ids=["dotdot", "nested-dotdot", "relative-symlink-out", "absolute-symlink"],
)
def test_tarball_escaping_the_cache_is_refused(serve, tmp_path, members, symlinks):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = _tar_gz(mirror / "cifar-10-python.tar.gz", members, symlinks)
    url, _ = serve(mirror)
    cache = cache_dir()

    with pytest.raises(DataError) as info:
        CIFAR10().download(
            cache, mirrors=[url], checksums={"cifar-10-python.tar.gz": md5_of(archive)}
        )

    assert "cannot extract" in str(info.value)
    assert "cifar-10-python.tar.gz" in str(info.value)
    assert not (cache.parent / "evil").exists()
    assert not (cache.parent.parent / "evil").exists()
    assert not (cache / "cifar-10-batches-py" / "evil").exists()


def test_offline_load_splits_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    empty = tmp_path / "empty-root"
    empty.mkdir()
    monkeypatch.setenv("REPLAB_MIRROR", DEAD)
    monkeypatch.delenv("REPLAB_DATA", raising=False)

    with pytest.raises(DataError) as info:
        load_splits("mnist", root=str(empty), download=True)

    message = str(info.value)
    assert f"looked in {empty}, {cache_dir()}" in message
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert DEAD + "train-images-idx3-ubyte.gz" in message
    assert "data.root" in message and "REPLAB_DATA" in message
    assert leftovers(cache_dir()) == []


def test_missing_dataset_without_download_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLAB_DATA", str(tmp_path / "nowhere"))

    with pytest.raises(DataError) as info:
        load_splits("mnist", root=str(tmp_path), download=False)

    message = str(info.value)
    assert f"looked in {tmp_path}, {tmp_path / 'nowhere'}, {cache_dir()}" in message
    assert "data.download is false" in message
    assert "data.root" in message and "REPLAB_DATA" in message


def test_stale_cached_file_is_replaced(serve, mnist_raw, served_md5):
    """A cached file whose md5 is wrong (say a crash mid-copy) is downloaded again."""
    cache = cache_dir()
    stale = cache / "MNIST" / "raw" / MNIST_FILES[1]
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not the file")
    url, requested = serve(mnist_raw)

    MNIST().download(cache, mirrors=[url], checksums=served_md5)

    assert "/" + MNIST_FILES[1] in requested
    assert md5_of(stale) == served_md5[MNIST_FILES[1]]
