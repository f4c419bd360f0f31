"""STL-10: 96x96 colour images in 10 classes (Coates, Lee & Ng, 2011): 5,000 labelled
train, 8,000 labelled test and 100,000 unlabelled images (``data.train_split: unlabeled``)
for self-supervised pretraining, in its binary layout ``stl10_binary/``.

Downloaded through torchvision (its URL and md5s, each unpacked file checked). The ``*_X.bin``
files are N x 3 x 96 x 96 uint8 stored column-major (hence the transpose); ``*_y.bin`` holds
labels 1-10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from replab.data.base import UNLABELLED, DatasetSource, ImageSet
from replab.data.download import extract_tar
from replab.data.registry import DATASETS
from replab.data.tvfetch import fetch_url, verify
from replab.errors import DataError

FOLDER = "stl10_binary"
FILES: dict[str, tuple[str, str | None]] = {
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin", None),
}
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE


def torchvision_class():
    from torchvision.datasets import STL10 as TorchvisionSTL10

    return TorchvisionSTL10


@DATASETS.register("stl10")
class STL10(DatasetSource):
    name = "stl10"
    title = "STL-10"
    classes = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
    shape = (3, SIDE, SIDE)
    extra_splits = ("unlabeled",)

    def locate(self, root: Path) -> Path | None:
        for folder in (root / FOLDER, root / "stl10" / FOLDER):
            needed = [f for f in (*FILES["train"], *FILES["test"]) if f is not None]
            if all((folder / f).is_file() for f in needed):
                return folder
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        x_name, y_name = FILES[split]
        path = folder / x_name
        if not path.is_file():
            raise DataError(
                f"STL-10's {split} images {str(path)!r} are missing",
                "point data.root at a complete stl10_binary folder, "
                "or let replab download STL-10 again",
            )
        data = np.fromfile(path, dtype=np.uint8)
        if data.size == 0 or data.size % IMAGE_BYTES:
            raise _bad(path, f"holds {data.size:,} bytes, not a whole number of 96x96 images")
        images = torch.from_numpy(data).view(-1, 3, SIDE, SIDE).transpose(2, 3).contiguous()
        n = len(images)
        if y_name is None:
            labels = torch.full((n,), UNLABELLED, dtype=torch.int64)
            classes: list[str] = []
        else:
            y = np.fromfile(folder / y_name, dtype=np.uint8).astype(np.int64)
            if y.shape != (n,) or y.min(initial=1) < 1 or y.max(initial=1) > 10:
                raise _bad(folder / y_name, f"has no label 1-10 for each of the {n:,} images")
            labels, classes = torch.from_numpy(y - 1), list(self.classes)
        return ImageSet(
            images, labels, classes, source=f"STL-10 {split} ({n:,} images) from {folder}"
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        tv = torchvision_class()
        archive = fetch_url(tv.url, (checksums or {}).get(tv.filename, tv.tgz_md5), cache, mirrors)
        extract_tar(archive, cache)
        folder = cache / FOLDER
        verify(folder, [(name, md5) for name, md5 in [*tv.train_list, *tv.test_list]], archive)
        return folder


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"STL-10 file {str(path)!r} {what}",
        "replace it with the official stl10_binary file",
    )
