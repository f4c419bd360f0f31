"""Your own arrays: a NumPy ``.npz`` file named by ``data.root``.

Arrays: ``x`` (N x H x W, N x H x W x C or N x C x H x W with C 1 or 3; uint8 0-255, or
float in [0, 1]) and optionally ``y`` (N integer labels 0..K-1), ``x_test`` / ``y_test`` (an
official test split; otherwise test is carved from ``x`` by seed) and ``classes`` (K class
names; default "0".."K-1"). Without ``y`` the set is unlabelled (self-supervised tasks only).
Read with ``allow_pickle=False``, so a file cannot run code when loaded.

Memory is bounded by what the file declares, checked before any array is read: each array's
shape and dtype come from its ``.npy`` header, and a split whose arrays need more than the
memory available (their size times the copies reading makes: 2 for uint8 images, 3 for
float ones) is refused, as is an array declaring more bytes than its zip member holds.
Without ``classes`` the labels name the classes 0..max(y); a max that implies more classes
than there are images, or more than 10,000, is refused (give the names in ``classes``).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from replab.data.base import UNLABELLED, DatasetSource, ImageSet
from replab.data.limits import MAX_CLASSES, available_memory, gib
from replab.data.registry import DATASETS
from replab.errors import DataError

CHANNELS = (1, 3)
FIX = "write it with np.savez(path, x=images, y=labels) as docs/datasets.md shows"


@DATASETS.register("npz")
class NPZ(DatasetSource):
    name = "npz"
    title = "npz file"
    shape = ()  # type: ignore[assignment]  # whatever the arrays are
    has_test_split = False
    user_path = True

    def locate(self, root: Path) -> Path | None:
        return root if root.is_file() else None

    def test_split(self, folder: Path | None) -> bool:
        assert folder is not None
        return "x_test" in _arrays(folder)

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        arrays = _arrays(folder)
        xk, yk = ("x_test", "y_test") if split == "test" else ("x", "y")
        if "x" not in arrays:
            raise _bad(folder, f"has no array 'x' (it has: {', '.join(arrays) or 'none'})")
        if ("y" in arrays) != ("y_test" in arrays) and "x_test" in arrays:
            raise _bad(folder, "has labels for only one of x and x_test")
        reading = [xk, yk, "classes", *(["y"] if split == "test" else [])]
        _fits_memory(folder, _declared(folder), [k for k in reading if k in arrays], xk)
        with np.load(folder, allow_pickle=False) as data:
            try:
                x = images_of(data[xk], folder, xk)
                y = data[yk] if yk in arrays else None
                names = data["classes"] if "classes" in arrays else None
                train_y = data["y"] if split == "test" and "y" in arrays else None
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
                raise _bad(folder, f"cannot be read ({err})") from None
        if y is None:
            labels = torch.full((len(x),), UNLABELLED, dtype=torch.int64)
            classes: list[str] = []
        else:
            classes = class_names(folder, names, y if train_y is None else train_y)
            labels = labels_of(y, len(x), len(classes), folder, yk)
        what = f"{len(classes)} classes" if classes else "unlabelled"
        return ImageSet(x, labels, classes, source=f"{folder} {xk} ({len(x):,} images, {what})")


def _arrays(path: Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return list(data.files)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise _bad(path, f"is not a readable .npz file ({err})") from None


def _declared(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype as its .npy header declares them; nothing else is read.
    An array declaring more bytes than its zip member holds is refused here."""
    declared: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(member)
                name, nbytes = info.filename[: -len(".npy")], _nbytes(shape, dtype)
                if nbytes > info.file_size:
                    raise _bad(
                        path,
                        f"declares {name} of shape {shape} {dtype} ({nbytes:,} bytes) but its "
                        f"member holds only {info.file_size:,} bytes (truncated or forged)",
                    )
                declared[name] = (shape, dtype)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise _bad(path, f"cannot be read ({err})") from None
    return declared


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _fits_memory(
    path: Path, declared: dict[str, tuple[tuple[int, ...], np.dtype]], keys: list[str], xk: str
) -> None:
    """Refuse, before reading, arrays that would not fit the memory available."""
    need = {}
    for key in keys:
        if key in declared:
            shape, dtype = declared[key]
            copies = (3 if dtype.kind == "f" else 2) if key == xk else 1
            need[key] = _nbytes(shape, dtype) * copies
    available = available_memory()
    if sum(need.values()) > available:
        big = max(need, key=need.__getitem__)
        shape, dtype = declared[big]
        raise _bad(
            path,
            f"declares {big} of shape {shape} {dtype}: reading it needs "
            f"{gib(sum(need.values()))}, more than the {gib(available)} of memory available",
            "write fewer or smaller images into the file (or split it), "
            "or run where more memory is free",
        )


def images_of(x: np.ndarray, path: Path, key: str) -> torch.Tensor:
    """``x`` as uint8 (N, C, H, W), checking rank, layout, dtype and range."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[3] in CHANNELS and x.shape[1] not in CHANNELS:
            x = x.transpose(0, 3, 1, 2)  # N x H x W x C
        elif x.shape[1] not in CHANNELS:
            raise _bad(
                path,
                f"has {key} of shape {x.shape}: neither N x H x W x C nor N x C x H x W "
                "with 1 or 3 channels",
            )
    else:
        raise _bad(
            path,
            f"has {key} of rank {x.ndim} (shape {x.shape}); "
            "images are N x H x W, N x H x W x C or N x C x H x W",
        )
    if len(x) == 0:
        raise _bad(path, f"has an empty {key}")
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x))
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 1:
            raise _bad(
                path,
                f"has float {key} with values from {lo} to {hi}; float images must be in [0, 1]",
            )
        return torch.from_numpy(np.rint(x * 255).astype(np.uint8))
    raise _bad(path, f"has {key} of dtype {x.dtype}; images are uint8 (0-255) or float in [0, 1]")


def class_names(path: Path, names: np.ndarray | None, y: np.ndarray) -> list[str]:
    if names is not None:
        if names.ndim != 1 or len(names) == 0:
            raise _bad(path, f"has 'classes' of shape {names.shape}; give a 1-D list of names")
        if len(names) > MAX_CLASSES:
            raise _bad(
                path,
                f"names {len(names):,} classes, more than the {MAX_CLASSES:,} replab handles",
                "merge classes, or keep fewer of them in the file",
            )
        return [str(n) for n in names.tolist()]
    if not np.issubdtype(y.dtype, np.integer) or y.size == 0:
        return []  # labels_of names the problem
    k = int(y.max()) + 1
    if k > min(len(y), MAX_CLASSES):
        raise _bad(
            path,
            f"has labels up to {k - 1:,}, which without 'classes' means {k:,} classes "
            f"(0..{k - 1:,}) for {len(y):,} images"
            + (f", more than the {MAX_CLASSES:,} replab handles" if k > MAX_CLASSES else ""),
            "number the classes 0..K-1 without gaps, or name every class in a 'classes' "
            "array (np.savez(path, x=images, y=labels, classes=names))",
        )
    return [str(i) for i in range(k)]


def labels_of(y: np.ndarray, n: int, k: int, path: Path, key: str) -> torch.Tensor:
    if y.ndim != 1 or len(y) != n:
        raise _bad(path, f"has {key} of shape {y.shape} for {n:,} images; give one label each")
    if not np.issubdtype(y.dtype, np.integer):
        raise _bad(path, f"has {key} of dtype {y.dtype}; labels are integers 0..K-1")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise _bad(
            path,
            f"has {key} from {lo} to {hi}, which does not fit its {k} classes (labels 0..{k - 1})",
        )
    return torch.from_numpy(y.astype(np.int64))


def _bad(path: Path, what: str, fix: str = FIX) -> DataError:
    return DataError(f"the npz file {str(path)!r} {what}", fix)
