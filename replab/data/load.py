"""Finding a dataset (data.root, $REPLAB_DATA, the cache), fetching it, and splitting it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.registry import DATASETS
from replab.data.splits import stratified_split
from replab.errors import DataError


def cache_dir() -> Path:
    """Where downloads go: $REPLAB_CACHE, else ~/.cache/replab."""
    return Path(os.environ.get("REPLAB_CACHE") or Path.home() / ".cache" / "replab").expanduser()


def search_roots(root: str | None = None) -> list[Path]:
    roots = [Path(root).expanduser()] if root else []
    if os.environ.get("REPLAB_DATA"):
        roots.append(Path(os.environ["REPLAB_DATA"]).expanduser())
    roots.append(cache_dir())
    return roots


def mirrors_for(source: DatasetSource) -> list[str]:
    """$REPLAB_MIRROR (a base URL serving the same file names) replaces the official mirrors."""
    override = os.environ.get("REPLAB_MIRROR")
    return [override] if override else list(source.mirrors)


def find(source: DatasetSource, root: str | None = None) -> Path | None:
    for candidate in search_roots(root):
        found = source.locate(candidate)
        if found is not None:
            return found
    return None


def locate_or_fetch(source: DatasetSource, root: str | None, download: bool) -> Path | None:
    if source.embedded:
        return None
    found = find(source, root)
    if found is not None:
        return found
    looked = ", ".join(str(p) for p in search_roots(root))
    if not download:
        raise DataError(
            f"{source.title} was not found (looked in {looked}) and data.download is false",
            "set data.root=FOLDER (or REPLAB_DATA) "
            "to a folder holding it, or allow data.download=true",
        )
    try:
        return source.download(cache_dir(), mirrors=mirrors_for(source))
    except DataError as err:
        raise DataError(
            f"{source.title} was not found "
            f"(looked in {looked}) and downloading it failed: {err.problem}",
            "connect to the internet and run again, "
            "or set data.root=FOLDER (or REPLAB_DATA) to a folder holding the files",
        ) from None


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    title: str

    @property
    def source(self) -> str:
        return "; ".join(dict.fromkeys([self.train.source, self.test.source]))


def load_splits(
    dataset: str,
    *,
    root: str | None = None,
    download: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    limit_train: int | None = None,
    limit_eval: int | None = None,
    seed: int = 0,
    classes: list[str] | None = None,
    refit: bool = False,
) -> Splits:
    """Train/val/test splits of ``dataset``; val (and test, if unofficial) carved by seed.

    ``classes`` keeps only those classes (relabelled 0..n-1 in that order) before the split,
    so the stratified cut works on the kept classes alone. ``refit`` trains on the validation
    images as well (the final fit after tuning); val is still those images, now seen in training.
    """
    source: DatasetSource = DATASETS.get(dataset)()
    folder = locate_or_fetch(source, root, download)
    pick = (lambda s: s.select_classes(classes)) if classes is not None else (lambda s: s)  # noqa: E731
    if source.has_test_split:
        pool, test = (
            pick(_checked(source, folder, "train")),
            pick(_checked(source, folder, "test")),
        )
        val_idx, train_idx = stratified_split(pool.labels, [val_fraction], seed)
    else:
        pool = pick(_checked(source, folder, "all"))
        test_idx, val_idx, train_idx = stratified_split(
            pool.labels, [test_fraction, val_fraction], seed
        )
        test = pool.subset(test_idx)
    train, val = (
        pool.subset(torch.cat([train_idx, val_idx]) if refit else train_idx),
        pool.subset(val_idx),
    )
    if refit:
        train.source += f", validation images included ({len(val_idx):,}; refit)"
    if limit_train is not None and limit_train < len(train):
        # train is already shuffled by the split, so its head is a random subset.
        train = train.subset(torch.arange(limit_train))
        train.source += f", limited to {limit_train:,} training images"
    if limit_eval is not None:
        val, test = (
            _stratified_head(val, limit_eval, seed),
            _stratified_head(test, limit_eval, seed),
        )
    for name, split, fix in (
        (
            "training",
            train,
            "lower data.val_fraction or data.test_fraction, or raise data.limit_train",
        ),
        (
            "validation",
            val,
            f"raise data.val_fraction (now {val_fraction}) so that every class "
            "gives at least one image, or use more data (data.limit_train, data.classes)",
        ),
        ("test", test, "raise data.test_fraction or data.limit_eval, or use more data"),
    ):
        if len(split) == 0:
            raise DataError(f"the {name} split of {source.title} is empty", fix)
    return Splits(train, val, test, source.title)


def _checked(source: DatasetSource, folder: Path | None, split: str) -> ImageSet:
    """``source``'s split, refused unless its images have the source's shape and its labels
    name its classes: a damaged or substituted file must not train on nonsense."""
    where = f"the {split} split of {source.title}" + (f" in {folder}" if folder else "")
    fix = "delete the dataset's files so they are downloaded again, or restore the originals"
    try:
        data = source.load_split(folder, split)
    except ValueError as err:  # ImageSet's own checks: not (N, C, H, W), counts that differ
        raise DataError(f"{where} is malformed: {err}", fix) from None
    if data.images.dtype != torch.uint8 or tuple(data.images.shape[1:]) != tuple(source.shape):
        raise DataError(
            f"{where} holds images of shape {tuple(data.images.shape[1:])} "
            f"({data.images.dtype}), not {tuple(source.shape)} uint8",
            fix,
        )
    labels = data.labels
    if len(labels) and (labels.min() < 0 or labels.max() >= len(data.classes)):
        raise DataError(
            f"{where} has labels from {int(labels.min())} to {int(labels.max())}, outside the "
            f"{len(data.classes)} classes (0 to {len(data.classes) - 1})",
            fix,
        )
    return data


def _stratified_head(split: ImageSet, n: int, seed: int) -> ImageSet:
    """A class-balanced random ``n`` of ``split`` (all of it when it is no larger)."""
    if n >= len(split):
        return split
    part = split.subset(stratified_split(split.labels, [n / len(split)], seed)[0])
    part.source += f", limited to {len(part):,} images"
    return part
