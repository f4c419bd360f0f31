"""CIFAR-10 in its original python-batch layout (``cifar-10-batches-py/``).

Also reads ``cifar10-mini``, a subset in the same layout; the split's ``source`` line says
how many images were found, so reports state which data they were made on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from replab.data.base import DatasetSource, ImageSet, Resource
from replab.data.download import extract_tar, fetch
from replab.data.registry import DATASETS
from replab.data.safe_pickle import load_pickle
from replab.errors import DataError

BATCHES = "cifar-10-batches-py"
_SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
FULL_TRAIN = 50_000
FULL_SIZE = {"train": FULL_TRAIN, "test": 10_000}


@DATASETS.register("cifar10")
class CIFAR10(DatasetSource):
    name = "cifar10"
    title = "CIFAR-10"
    classes = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    shape = (3, 32, 32)
    mirrors = ("https://www.cs.toronto.edu/~kriz/",)
    resources = (Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),)

    def locate(self, root: Path) -> Path | None:
        for candidate in (
            root / BATCHES,
            root / "cifar10-mini" / BATCHES,
            root / "cifar-10" / BATCHES,
        ):
            if all((candidate / f).is_file() for files in _SPLITS.values() for f in files):
                return candidate
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        images, labels = [], []
        for name in _SPLITS[split]:
            batch = load_pickle(folder / name)
            data, batch_labels = _fields(batch, folder / name)
            images.append(data)
            labels.append(batch_labels)
        x = torch.from_numpy(np.concatenate(images)).view(-1, 3, 32, 32)
        y = torch.from_numpy(np.concatenate(labels))
        full = FULL_SIZE[split]
        subset = "" if len(y) == full else f", a subset of the full {full:,}"
        return ImageSet(
            x,
            y,
            list(self.classes),
            source=f"CIFAR-10 {split} ({len(y):,} images{subset}) from {folder}",
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        (resource,) = self.resources
        archive = fetch(
            resource,
            list(mirrors or self.mirrors),
            cache,
            md5=(checksums or {}).get(resource.filename),
        )
        extract_tar(archive, cache)
        folder = self.locate(cache)
        if folder is None:
            raise DataError(
                f"{archive} does not contain {BATCHES}/", f"delete {archive} and run again"
            )
        return folder


def _fields(batch: object, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pull ``data`` (N x 3072 uint8) and ``labels`` out of a CIFAR-10 batch dict."""
    return batch_arrays(str_keys(batch, path, _bad), path, "labels", 10, _bad)


def str_keys(batch: object, path: Path, bad: Callable[[Path, str], DataError]) -> dict:
    """A pickled CIFAR dict with its bytes keys decoded; anything else is ``bad``."""
    if not isinstance(batch, dict):
        raise bad(path, f"holds a {type(batch).__name__}, not a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def batch_arrays(
    batch: dict, path: Path, label_key: str, classes: int, bad: Callable[[Path, str], DataError]
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (N x 3072 uint8) and ``batch[label_key]`` (one class 0..classes-1 per image)
    of a CIFAR-10 or CIFAR-100 batch, both checked; ``bad`` words the error for that dataset."""
    data, labels = batch.get("data"), batch.get(label_key)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        raise bad(path, "has no 'data' array of shape (N, 3072) uint8")
    y = np.asarray(labels, dtype=np.int64) if isinstance(labels, list) else None
    if y is None or y.shape != (len(data),) or y.min(initial=0) < 0 or y.max(initial=0) >= classes:
        raise bad(path, f"has no '{label_key}' list of one class 0-{classes - 1} per image")
    return data, y


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"CIFAR-10 batch {str(path)!r} {what}",
        "replace it with the official cifar-10-batches-py file",
    )
