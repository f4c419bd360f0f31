"""SVHN: 99,289 32x32 colour house-number digits from Street View (Netzer et al., 2011),
the cropped-digit format: ``train_32x32.mat`` (73,257) and ``test_32x32.mat`` (26,032).

Downloaded through torchvision (its URLs and md5s), read with scipy's MATLAB reader: ``X``
is 32 x 32 x 3 x N uint8, ``y`` is N x 1 with digit 0 stored as 10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.registry import DATASETS
from replab.data.tvfetch import fetch_url
from replab.errors import DataError

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
FOLDERS = ("svhn", "SVHN", ".")  # torchvision users name the folder either way


def torchvision_class():
    from torchvision.datasets import SVHN as TorchvisionSVHN

    return TorchvisionSVHN


@DATASETS.register("svhn")
class SVHN(DatasetSource):
    name = "svhn"
    title = "SVHN"
    classes = tuple(str(i) for i in range(10))
    shape = (3, 32, 32)

    def locate(self, root: Path) -> Path | None:
        for sub in FOLDERS:
            folder = root / sub
            if all((folder / f).is_file() for f in FILES.values()):
                return folder.resolve() if sub == "." else folder
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        path = folder / FILES[split]
        from scipy.io import loadmat

        try:
            mat = loadmat(path, variable_names=["X", "y"])
        except (ValueError, OSError, TypeError, NotImplementedError) as err:
            raise _bad(path, f"cannot be read ({err})") from None
        x, y = mat.get("X"), mat.get("y")
        if (
            not isinstance(x, np.ndarray)
            or x.dtype != np.uint8
            or x.ndim != 4
            or x.shape[:3]
            != (
                32,
                32,
                3,
            )
        ):
            raise _bad(path, "has no 'X' array of shape 32 x 32 x 3 x N uint8")
        n = x.shape[3]
        if not isinstance(y, np.ndarray) or y.size != n:
            raise _bad(path, f"has no 'y' with one label per image ({n:,})")
        y = y.reshape(-1).astype(np.int64)
        if y.min(initial=1) < 1 or y.max(initial=1) > 10:
            raise _bad(path, "has labels outside 1-10")
        images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
        return ImageSet(
            images,
            torch.from_numpy(y % 10),  # the digit 0 is stored as 10
            list(self.classes),
            source=f"SVHN {split} ({n:,} images) from {folder}",
        )

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        folder = cache / "svhn"
        for split in FILES:
            url, _, md5 = torchvision_class().split_list[split]
            fetch_url(url, (checksums or {}).get(FILES[split], md5), folder, mirrors)
        return folder


def _bad(path: Path, what: str) -> DataError:
    return DataError(
        f"SVHN file {str(path)!r} {what}",
        "delete it and let replab download it again, or point data.root at an intact copy",
    )
