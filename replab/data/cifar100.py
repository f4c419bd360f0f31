"""CIFAR-100: 60,000 32x32 colour images in 100 fine classes (Krizhevsky, 2009), in its
python layout ``cifar-100-python/`` (``train``, ``test``, ``meta`` pickles).

Downloaded through torchvision (its URL and md5s); the pickles are read with replab's
restricted unpickler, which builds arrays and lists but never runs code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.cifar10 import batch_arrays, str_keys
from replab.data.download import extract_tar
from replab.data.registry import DATASETS
from replab.data.safe_pickle import load_pickle
from replab.data.tvfetch import fetch_url, verify
from replab.errors import DataError

FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")


def torchvision_class():
    from torchvision.datasets import CIFAR100 as TorchvisionCIFAR100

    return TorchvisionCIFAR100


@DATASETS.register("cifar100")
class CIFAR100(DatasetSource):
    name = "cifar100"
    title = "CIFAR-100"
    shape = (3, 32, 32)

    def locate(self, root: Path) -> Path | None:
        for folder in (root / FOLDER, root / "cifar100" / FOLDER):
            if all((folder / f).is_file() for f in FILES):
                return folder
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        meta = str_keys(load_pickle(folder / "meta", "CIFAR-100", FOLDER), folder / "meta", _bad)
        names = meta.get("fine_label_names")
        if not isinstance(names, list) or len(names) != 100:
            raise _bad(folder / "meta", "has no list of 100 'fine_label_names'")
        path = folder / split
        batch = str_keys(load_pickle(path, "CIFAR-100", FOLDER), path, _bad)
        data, y = batch_arrays(batch, path, "fine_labels", 100, _bad)
        return ImageSet(
            torch.from_numpy(data).view(-1, 3, 32, 32),
            torch.from_numpy(y),
            [str(n) for n in names],
            source=f"CIFAR-100 {split} ({len(y):,} images) from {folder}",
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        tv = torchvision_class()
        archive = fetch_url(tv.url, (checksums or {}).get(tv.filename, tv.tgz_md5), cache, mirrors)
        extract_tar(archive, cache)
        folder = cache / FOLDER
        files = [*tv.train_list, *tv.test_list, [tv.meta["filename"], tv.meta["md5"]]]
        verify(folder, [(name, md5) for name, md5 in files], archive)
        return folder


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"CIFAR-100 file {str(path)!r} {what}",
        "replace it with the official cifar-100-python file",
    )
