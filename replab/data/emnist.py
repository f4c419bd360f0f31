"""EMNIST letters: 145,600 28x28 handwritten letters in 26 classes a-z (Cohen et al., 2017),
from NIST's ``gzip.zip`` of IDX files (train 124,800, test 20,800).

Downloaded through torchvision (its URL and md5); only the four letters files are taken out
of the archive, and read with replab's IDX reader. EMNIST stores each image transposed, so
it is turned upright here; labels 1-26 become 0-25.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.idx import read_idx
from replab.data.mnist import idx_file
from replab.data.registry import DATASETS
from replab.data.tvfetch import fetch_url
from replab.errors import DataError

FOLDER = "EMNIST"  # torchvision's folder name, so its downloads are found too
FILES = {
    "train": ("emnist-letters-train-images-idx3-ubyte", "emnist-letters-train-labels-idx1-ubyte"),
    "test": ("emnist-letters-test-images-idx3-ubyte", "emnist-letters-test-labels-idx1-ubyte"),
}


def torchvision_class():
    from torchvision.datasets import EMNIST as TorchvisionEMNIST

    return TorchvisionEMNIST


@DATASETS.register("emnist")
class EMNISTLetters(DatasetSource):
    name = "emnist"
    title = "EMNIST letters"
    classes = tuple("abcdefghijklmnopqrstuvwxyz")
    shape = (1, 28, 28)

    def locate(self, root: Path) -> Path | None:
        for folder in (root / FOLDER / "raw", root / FOLDER, root):
            if all(idx_file(folder, name) for pair in FILES.values() for name in pair):
                return folder
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        paths = [idx_file(folder, name) for name in FILES[split]]
        if paths[0] is None or paths[1] is None:
            raise DataError(
                f"the EMNIST letters {split} files are missing from {str(folder)!r}",
                "point data.root at a complete copy, or let replab download it again",
            )
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"EMNIST letters {split} files in {str(folder)!r} disagree: "
                f"images {images.shape}, labels {labels.shape}",
                "replace them with the official files",
            )
        if len(labels) and (labels.min() < 1 or labels.max() > 26):
            raise DataError(
                f"EMNIST letters {split} labels in {str(paths[1])!r} are outside 1-26",
                "replace the file with the official one",
            )
        return ImageSet(
            torch.from_numpy(images.copy()).transpose(1, 2).contiguous().unsqueeze(1),
            torch.from_numpy(labels.astype("int64")) - 1,
            list(self.classes),
            source=f"EMNIST letters {split} ({len(labels):,} images) from {folder}",
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        tv = torchvision_class()
        raw = cache / FOLDER / "raw"
        archive = fetch_url(tv.url, (checksums or {}).get("gzip.zip", tv.md5), raw, mirrors)
        try:
            with zipfile.ZipFile(archive) as zf:
                for pair in FILES.values():
                    for name in pair:
                        member = f"gzip/{name}.gz"
                        part = raw / f"{name}.gz.part"
                        # copied by name, never extracted by the archive's own paths
                        with zf.open(member) as src, part.open("wb") as out:
                            shutil.copyfileobj(src, out)
                        part.replace(raw / f"{name}.gz")
        except (zipfile.BadZipFile, KeyError, OSError) as err:
            raise DataError(
                f"cannot take the EMNIST letters files out of {archive}: {err}",
                f"delete {archive} and run again to download it afresh",
            ) from None
        return raw
