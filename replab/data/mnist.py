"""MNIST and Fashion-MNIST, in torchvision's ``<root>/<Name>/raw/`` layout of IDX files."""

from __future__ import annotations

from pathlib import Path

import torch

from replab.data.base import DatasetSource, ImageSet, Resource
from replab.data.download import fetch
from replab.data.idx import read_idx
from replab.data.registry import DATASETS
from replab.errors import DataError

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class IDXSource(DatasetSource):
    """A 28x28 grayscale dataset published as four IDX files."""

    folder = ""  # torchvision's folder name under the root

    def locate(self, root: Path) -> Path | None:
        for candidate in (root / self.folder / "raw", root / self.folder, root):
            if all(idx_file(candidate, name) for pair in _FILES.values() for name in pair):
                return candidate
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        images_path, labels_path = (idx_file(folder, name) for name in _FILES[split])
        if images_path is None or labels_path is None:  # gone since ``locate`` found them
            raise DataError(
                f"the {self.title} {split} files are missing from {str(folder)!r}",
                "point data.root at a complete copy, or let replab download it again",
            )
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{self.title} {split} files in {str(folder)!r} disagree: "
                f"images {images.shape}, labels {labels.shape}",
                "replace them with the official files",
            )
        return ImageSet(
            torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype("int64")),
            list(self.classes),
            source=f"{self.title} {split} ({len(labels):,} images) from {folder}",
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        dest = cache / self.folder / "raw"
        for resource in self.resources:
            md5 = (checksums or {}).get(resource.filename)
            fetch(resource, list(mirrors or self.mirrors), dest, md5=md5)
        return dest


@DATASETS.register("mnist")
class MNIST(IDXSource):
    name = "mnist"
    title = "MNIST"
    folder = "MNIST"
    classes = tuple(str(i) for i in range(10))
    shape = (1, 28, 28)
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    resources = (
        Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    )


@DATASETS.register("fashion_mnist")
class FashionMNIST(IDXSource):
    name = "fashion_mnist"
    title = "Fashion-MNIST"
    folder = "FashionMNIST"
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    shape = (1, 28, 28)
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    resources = (
        Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    )


def idx_file(folder: Path, name: str) -> Path | None:
    """An IDX file as published (``name.gz``) or unpacked (``name``), whichever is there."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    return None
