"""SVHN, STL-10, CIFAR-100 and EMNIST letters, downloaded through torchvision's own code.

Each test writes a handful of images in the dataset's REAL format (SVHN's MATLAB .mat,
STL-10's column-major binary files in a tar.gz, CIFAR-100's python pickles in a tar.gz,
EMNIST's gzip'ed IDX files inside its zip), serves them from a loopback HTTP server through
REPLAB_MIRROR, and downloads them with torchvision's ``download_url`` checking the served
files' md5s: the torchvision class's md5 attributes are swapped for those (the documented
override, as test_download.py does for MNIST). Without the swap the official md5s apply and
the download is refused, leaving nothing in the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from replab.cli import main
from replab.data import DATASETS, cache_dir, load_splits
from replab.errors import DataError
from tests.data.test_download import serve  # noqa: F401  (the loopback server fixture)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def mirror(tmp_path, serve, monkeypatch):  # noqa: F811
    folder = tmp_path / "mirror"
    folder.mkdir()

    def start() -> list[str]:
        url, requested = serve(folder)
        monkeypatch.setenv("REPLAB_MIRROR", url)
        return requested

    return folder, start


def files_in_cache() -> list[str]:
    return sorted(str(p.relative_to(cache_dir())) for p in cache_dir().rglob("*") if p.is_file())


# --- SVHN -----------------------------------------------------------------------------------


def write_svhn(folder: Path, rng) -> dict[str, np.ndarray]:
    from scipy.io import savemat

    images = {}
    for split, n in (("train", 30), ("test", 20)):
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        digits = np.arange(n) % 10
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)  # 0 stored as 10
        savemat(folder / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": y})
        images[split] = x
    return images


def test_svhn_downloads_through_torchvision_verifies_and_loads(mirror, monkeypatch):
    from torchvision.datasets import SVHN

    folder, start = mirror
    images = write_svhn(folder, np.random.default_rng(0))
    served = {
        k: [url, name, md5(folder / name)] if k != "extra" else [url, name, m]
        for k, (url, name, m) in SVHN.split_list.items()
    }
    monkeypatch.setattr(SVHN, "split_list", served)
    requested = start()

    # 3 images a class: a third of them validates (an empty validation split is refused)
    splits = load_splits("svhn", download=True, val_fraction=0.34, seed=0)

    # torchvision's download_url asks once to follow redirects, then again for the file
    assert set(requested) == {"/test_32x32.mat", "/train_32x32.mat"}
    assert files_in_cache() == ["svhn/test_32x32.mat", "svhn/train_32x32.mat"]
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (30, 20)
    assert splits.test.images.shape == (20, 3, 32, 32)
    assert torch.equal(splits.test.images, torch.from_numpy(images["test"]))
    assert splits.test.labels.tolist() == [i % 10 for i in range(20)]  # 10 read back as 0
    assert splits.test.classes == [str(i) for i in range(10)]


def test_svhn_official_checksums_refuse_other_files(mirror):
    folder, start = mirror
    write_svhn(folder, np.random.default_rng(0))
    start()
    with pytest.raises(DataError, match="checksum mismatch for train_32x32.mat"):
        load_splits("svhn", download=True)
    assert files_in_cache() == []


# --- STL-10 ---------------------------------------------------------------------------------

STL_COUNTS = {"train": 30, "test": 20, "unlabeled": 40}


def write_stl10(folder: Path, rng) -> dict[str, np.ndarray]:
    members, images = {}, {}
    for split, n in STL_COUNTS.items():
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)
        images[split] = x
        # the published files are column-major: each channel is stored transposed
        members[f"stl10_binary/{split}_X.bin"] = x.transpose(0, 1, 3, 2).tobytes()
        if split != "unlabeled":
            members[f"stl10_binary/{split}_y.bin"] = (
                (np.arange(n) % 10 + 1).astype(np.uint8).tobytes()
            )
    members["stl10_binary/class_names.txt"] = b"airplane\nbird\ncar\ncat\ndeer\ndog\nhorse\n"
    tar_gz(folder / "stl10_binary.tar.gz", members)
    return images, members


def patch_stl10(monkeypatch, folder: Path, members: dict[str, bytes]) -> None:
    from torchvision.datasets import STL10

    inner = {name.split("/")[1]: md5_bytes(data) for name, data in members.items()}
    monkeypatch.setattr(STL10, "tgz_md5", md5(folder / "stl10_binary.tar.gz"))
    monkeypatch.setattr(STL10, "train_list", [[n, inner[n]] for n, _ in STL10.train_list])
    monkeypatch.setattr(STL10, "test_list", [[n, inner[n]] for n, _ in STL10.test_list])


def test_stl10_downloads_verifies_and_pretrains_on_unlabeled(mirror, monkeypatch):
    folder, start = mirror
    images, members = write_stl10(folder, np.random.default_rng(1))
    patch_stl10(monkeypatch, folder, members)
    requested = start()

    splits = load_splits("stl10", download=True, val_fraction=0.34, seed=0, train_split="unlabeled")

    assert set(requested) == {"/stl10_binary.tar.gz"}
    assert splits.pretrain is not None and not splits.pretrain.labelled
    assert len(splits.pretrain) == 40 and set(splits.pretrain.labels.tolist()) == {-1}
    assert torch.equal(splits.pretrain.images, torch.from_numpy(images["unlabeled"]))
    assert torch.equal(splits.test.images, torch.from_numpy(images["test"]))
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (30, 20)
    assert splits.test.labels.tolist() == [i % 10 for i in range(20)]
    assert splits.test.classes[:3] == ["airplane", "bird", "car"]
    # the official split sizes, resized once for a small encoder
    small = load_splits("stl10", download=False, image_size=32, channels=1, val_fraction=0.34)
    assert small.train.images.shape[1:] == (1, 32, 32) and small.pretrain is None


def test_stl10_an_unpacked_file_failing_its_md5_is_refused(mirror, monkeypatch):
    from torchvision.datasets import STL10

    folder, start = mirror
    _, members = write_stl10(folder, np.random.default_rng(1))
    patch_stl10(monkeypatch, folder, members)
    monkeypatch.setattr(STL10, "test_list", [["test_X.bin", "0" * 32], STL10.test_list[1]])
    start()
    with pytest.raises(DataError, match="test_X.bin unpacked from .* fails its md5 check"):
        load_splits("stl10", download=True)


def test_stl10_official_checksum_refuses_the_archive(mirror):
    folder, start = mirror
    write_stl10(folder, np.random.default_rng(1))
    start()
    with pytest.raises(DataError, match="checksum mismatch for stl10_binary.tar.gz"):
        load_splits("stl10", download=True)
    assert files_in_cache() == []


def test_stl10_pretrains_on_unlabeled_end_to_end(mirror, monkeypatch, tmp_path, capsys):
    folder, start = mirror
    _, members = write_stl10(folder, np.random.default_rng(2))
    patch_stl10(monkeypatch, folder, members)
    start()
    common = [  # docs/datasets.md's example: SimCLR pretrained on the unlabelled images
        "a3-mnist-simclr",
        "data.dataset=stl10",
        "data.image_size=32",
        "data.channels=1",
        "data.val_fraction=0.34",  # one image per class: 30 train images hold 3 of each
        "trainer.epochs=1",
        "probe.trainer.epochs=1",
        "analysis.enabled=false",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    assert main(["run", *common, "data.train_split=unlabeled"]) == 0
    out = capsys.readouterr().out
    assert "STL-10 unlabeled (40 images)" in out
    assert "probe.test_accuracy" in out
    # naming a split STL-10 does not have is a clear error
    assert main(["run", *common, "data.train_split=extra"]) == 2
    err = capsys.readouterr().err
    assert "data.train_split='extra': STL-10 has no such split" in err
    assert "unlabeled" in err and "Traceback" not in err


# --- CIFAR-100 ------------------------------------------------------------------------------


def write_cifar100(folder: Path, rng) -> tuple[dict, dict[str, bytes]]:
    members, batches = {}, {}
    for split, n in (("train", 40), ("test", 20)):
        batch = {
            "filenames": [f"img_{i}.png" for i in range(n)],
            "batch_label": f"{split} batch",
            # 20 of the 100 classes, two training images each: enough for a validation split
            "fine_labels": [int(v) for v in (np.arange(n) * 7) % 20],
            "coarse_labels": [int(v) for v in np.arange(n) % 20],
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        }
        batches[split] = batch
        members[f"cifar-100-python/{split}"] = pickle.dumps(batch, protocol=2)
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    members["cifar-100-python/meta"] = pickle.dumps(meta, protocol=2)
    tar_gz(folder / "cifar-100-python.tar.gz", members)
    return batches, members


def test_cifar100_downloads_through_torchvision_verifies_and_loads(mirror, monkeypatch):
    from torchvision.datasets import CIFAR100

    folder, start = mirror
    batches, members = write_cifar100(folder, np.random.default_rng(3))
    inner = {name.split("/")[1]: md5_bytes(data) for name, data in members.items()}
    monkeypatch.setattr(CIFAR100, "tgz_md5", md5(folder / "cifar-100-python.tar.gz"))
    monkeypatch.setattr(CIFAR100, "train_list", [["train", inner["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", inner["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": inner["meta"]})
    requested = start()

    splits = load_splits("cifar100", download=True, val_fraction=0.5, seed=0)

    assert set(requested) == {"/cifar-100-python.tar.gz"}
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (40, 20)
    assert splits.test.images.shape == (20, 3, 32, 32)
    expected = torch.from_numpy(batches["test"]["data"]).view(-1, 3, 32, 32)
    assert torch.equal(splits.test.images, expected)
    assert splits.test.labels.tolist() == batches["test"]["fine_labels"]
    assert len(splits.test.classes) == 100 and splits.test.classes[7] == "fine7"


def test_cifar100_official_checksum_refuses_the_archive(mirror):
    folder, start = mirror
    write_cifar100(folder, np.random.default_rng(3))
    start()
    with pytest.raises(DataError, match="checksum mismatch for cifar-100-python.tar.gz"):
        load_splits("cifar100", download=True)
    assert files_in_cache() == []


# --- EMNIST letters -------------------------------------------------------------------------


def idx_gz(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    return gzip.compress(header + array.tobytes())


def write_emnist(folder: Path, rng) -> dict[str, np.ndarray]:
    images = {}
    with zipfile.ZipFile(folder / "gzip.zip", "w") as zf:
        for split, n in (("train", 52), ("test", 26)):
            x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
            images[split] = x
            y = (np.arange(n) % 26 + 1).astype(np.uint8)
            # EMNIST stores every image transposed
            zf.writestr(
                f"gzip/emnist-letters-{split}-images-idx3-ubyte.gz",
                idx_gz(x.transpose(0, 2, 1).copy()),
            )
            zf.writestr(f"gzip/emnist-letters-{split}-labels-idx1-ubyte.gz", idx_gz(y))
            zf.writestr(f"gzip/emnist-digits-{split}-labels-idx1-ubyte.gz", idx_gz(y))
    return images


def test_emnist_letters_downloads_through_torchvision_verifies_and_loads(mirror, monkeypatch):
    from torchvision.datasets import EMNIST

    folder, start = mirror
    images = write_emnist(folder, np.random.default_rng(4))
    monkeypatch.setattr(EMNIST, "md5", md5(folder / "gzip.zip"))
    requested = start()

    splits = load_splits("emnist", download=True, val_fraction=0.5, seed=0)

    assert set(requested) == {"/gzip.zip"}
    raw = sorted(p.name for p in (cache_dir() / "EMNIST" / "raw").iterdir())
    assert raw == sorted(
        [
            f"emnist-letters-{s}-{k}-idx{d}-ubyte.gz"
            for s in ("train", "test")
            for k, d in (("images", 3), ("labels", 1))
        ]
        + ["gzip.zip"]
    )
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (52, 26)
    assert torch.equal(splits.test.images[:, 0], torch.from_numpy(images["test"]))  # upright
    assert splits.test.labels.tolist() == list(range(26))
    assert splits.test.classes == list("abcdefghijklmnopqrstuvwxyz")


def test_emnist_official_checksum_refuses_the_archive(mirror):
    folder, start = mirror
    write_emnist(folder, np.random.default_rng(4))
    start()
    with pytest.raises(DataError, match="checksum mismatch for gzip.zip"):
        load_splits("emnist", download=True)
    assert files_in_cache() == []


def test_new_datasets_are_registered_and_listed(capsys):
    for name in ("svhn", "stl10", "cifar100", "emnist", "kmnist", "image_folder", "npz"):
        assert name in DATASETS.names()
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for title in ("SVHN", "STL-10", "CIFAR-100", "EMNIST letters"):
        assert title in out
    assert "data.root=DIR" in out and "data.root=FILE.npz" in out  # your own: where to say
    # `replab run --help` lists the names too, from the registry
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    for name in DATASETS.names():
        assert f"  {name} " in help_text
