"""Finding a dataset (data.root, $REPLAB_DATA, the cache), fetching it, and splitting it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.convert import conform
from replab.data.packed_splits import load_packed
from replab.data.registry import DATASETS
from replab.data.splits import stratified_head, stratified_split
from replab.data.stream import StreamSet
from replab.errors import ConfigError, DataError


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


def recorded_root(dataset: str, described: str) -> Path | None:
    """The folder a run found ``dataset`` in, read back from its description (summary.json's
    "data": "MNIST train (...) from FOLDER, ..."), when that folder still holds it; None for a
    dataset bundled with a library or one that has gone. A saved run reads its own data there
    before looking in $REPLAB_DATA or the cache, as it did when it trained."""
    source = DATASETS.get(dataset)()
    if source.embedded or source.user_path:  # nothing to look for / data.root says where
        return None
    for part in described.split(" from ")[1:]:
        folder = Path(re.split(r", limited|; ", part, maxsplit=1)[0])
        if folder.is_absolute() and folder.is_dir() and source.locate(folder) is not None:
            return folder
    return None


# what to try when nothing can be downloaded: the dataset bundled with scikit-learn
NO_DOWNLOAD = (
    "the digits dataset, which needs no download "
    "(data.dataset=digits; for study g: --dataset digits)"
)


def locate_or_fetch(source: DatasetSource, root: str | None, download: bool) -> Path | None:
    if source.embedded:
        return None
    if source.user_path:
        return _user_path(source, root)
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
            "set data.root=FOLDER (or REPLAB_DATA) to a folder holding the files, "
            f"or use {NO_DOWNLOAD}",
        ) from None


def _user_path(source: DatasetSource, root: str | None) -> Path:
    """The user's own folder or file: data.root names it, and it must be there."""
    if not root:
        raise ConfigError(
            f"data.dataset={source.name} reads your own {source.title}, "
            "and data.root does not say where it is",
            "add data.root=PATH (or --data-dir PATH); see docs/datasets.md",
        )
    path = Path(root).expanduser()
    found = source.locate(path)
    if found is None:
        raise DataError(
            f"{str(path)!r} is not {source.title}"
            + ("" if path.exists() else " (it does not exist)"),
            f"point data.root at {source.title}; see docs/datasets.md",
        )
    return found


def planned_shape(
    dataset: str, image_size: int | None = None, channels: int | None = None
) -> tuple[int, int, int] | None:
    """The (C, H, W) a run of ``dataset`` will see, without loading it; None when only the
    data can tell (your own folder or file)."""
    shape = DATASETS.get(dataset).shape
    if len(shape) != 3:
        return None
    c, h, w = shape
    return (channels or c, image_size or h, image_size or w)


@dataclass
class Splits:
    """train/val/test, and ``pretrain`` when the model trains on another split.

    With ``data.train_split`` (STL-10's ``unlabeled``) the model trains on ``pretrain`` and
    validates on ``val``; probes and the analysis use the labelled train/val/test.
    """

    # streamed: packed shards too large to hold (packed_splits)
    train: ImageSet | StreamSet
    val: ImageSet | StreamSet
    test: ImageSet | StreamSet
    title: str
    pretrain: ImageSet | None = None
    residency: str = ""  # packed shards: which splits are held or streamed, and why

    @property
    def fit(self) -> ImageSet | StreamSet:
        """What the model itself trains on."""
        return self.pretrain if self.pretrain is not None else self.train

    @property
    def source(self) -> str:
        parts = [self.pretrain.source] if self.pretrain is not None else []
        return "; ".join(dict.fromkeys([*parts, self.train.source, self.test.source]))


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
    train_split: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    skip_corrupt: bool = False,
    streaming: dict | None = None,
) -> Splits:
    """Train/val/test splits of ``dataset``; val (and test, if unofficial) carved by seed.

    ``classes`` keeps only those classes (relabelled 0..n-1 in that order) before the split,
    so the stratified cut works on the kept classes alone. ``refit`` trains on the validation
    images as well (the final fit after tuning); val is still those images, now seen in training.
    ``train_split`` names a further split the model trains on (``Splits.pretrain``); the
    labelled splits are still loaded for the probes. ``image_size`` / ``channels`` resize and
    convert every split once, here. ``streaming``: ``load_packed``'s options (resident,
    budget, verify, workers) for ``dataset="shards"``.
    """
    if dataset == "shards":
        parts, residency = load_packed(
            root, val_fraction=val_fraction, limit_train=limit_train, limit_eval=limit_eval,
            seed=seed, classes=classes, refit=refit, train_split=train_split,
            image_size=image_size, channels=channels, **(streaming or {}),
        )  # fmt: skip
        return Splits(
            parts["train"], parts["val"], parts["test"], "packed shards", None, residency.reason
        )
    if (streaming or {}).get("resident") is False:
        raise ConfigError(
            f"data.resident=false streams packed shards, and data.dataset={dataset} is read "
            "into memory",
            f"pack it first (replab data pack {dataset} --out DIR) and train with "
            "data.dataset=shards data.root=DIR, or leave data.resident at auto",
        )
    return _held(
        dataset, root, download, val_fraction, test_fraction, limit_train, limit_eval, seed,
        classes, refit, train_split, image_size, channels, skip_corrupt,
    )  # fmt: skip


def _held(
    dataset: str,
    root: str | None,
    download: bool,
    val_fraction: float,
    test_fraction: float,
    limit_train: int | None,
    limit_eval: int | None,
    seed: int,
    classes: list[str] | None,
    refit: bool,
    train_split: str | None,
    image_size: int | None,
    channels: int | None,
    skip_corrupt: bool,
) -> Splits:
    """``load_splits`` of a dataset decoded into memory (every source but packed shards)."""
    if train_split in ("train", ""):
        train_split = None
    source = _source(dataset, image_size, channels, skip_corrupt, train_split)
    folder = locate_or_fetch(source, root, download)

    def load(split: str) -> ImageSet:
        part = _checked(source, folder, split)
        images = conform(part.images, image_size, channels)
        if images is not part.images:
            part = ImageSet(images, part.labels, part.classes, part.source)
        return part

    def pick(part: ImageSet) -> ImageSet:
        return _pick(part, classes)

    if source.test_split(folder):
        pool, test = pick(load("train")), pick(load("test"))
        if test.shape != pool.shape:  # else training ends in a layer's shape error
            raise DataError(
                f"{source.title}'s test images are {test.shape} (C x H x W) but its train "
                f"images {pool.shape}",
                "give both splits one image size and channel count, or set data.image_size "
                "and data.channels so that both are brought to one shape",
            )
        val_idx, train_idx = stratified_split(pool.labels, [val_fraction], seed)
    else:
        pool = pick(load("all"))
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
    pretrain = load(train_split) if train_split is not None else None
    if pretrain is not None and pretrain.shape != train.shape:
        raise DataError(
            f"{source.title}'s {train_split} images are {pretrain.shape} "
            f"but its train images {train.shape}",
            "set data.image_size and data.channels so that both are brought to one shape",
        )
    train, pretrain = _limit_train(train, pretrain, limit_train, seed)
    if limit_eval is not None:
        val, test = (
            stratified_head(val, limit_eval, seed),
            stratified_head(test, limit_eval, seed),
        )
    _refuse_empty(source, train, val, test, val_fraction)
    return Splits(train, val, test, source.title, pretrain)


def _source(
    dataset: str,
    image_size: int | None,
    channels: int | None,
    skip_corrupt: bool,
    train_split: str | None,
) -> DatasetSource:
    """The source of ``dataset`` with the decoding options set; ``train_split`` checked."""
    source: DatasetSource = DATASETS.get(dataset)()
    source.image_size, source.channels, source.skip_corrupt = image_size, channels, skip_corrupt
    if train_split is not None and train_split not in source.extra_splits:
        others = ", ".join(source.extra_splits) or "none: it has train and test only"
        raise ConfigError(
            f"data.train_split={train_split!r}: {source.title} has no such split",
            f"use one of its extra splits ({others}), or leave data.train_split unset",
        )
    return source


def _pick(part: ImageSet, classes: list[str] | None) -> ImageSet:
    """``part`` with only ``classes`` (all of it when None)."""
    if classes is None:
        return part
    if not part.labelled:
        raise ConfigError(
            f"data.classes {list(classes)} picks classes, but {part.source} has no labels",
            "remove data.classes, or give the data labels (class subfolders, y in the npz)",
        )
    return part.select_classes(classes)


def _limit_train(
    train: ImageSet, pretrain: ImageSet | None, limit: int | None, seed: int
) -> tuple[ImageSet, ImageSet | None]:
    """data.limit_train applied to what the model trains on (``pretrain`` when there is one)."""
    if limit is None:
        return train, pretrain
    # the training split is already shuffled by the split, so its head is a random subset
    if pretrain is not None and limit < len(pretrain):
        perm = torch.randperm(len(pretrain), generator=torch.Generator().manual_seed(seed))
        pretrain = pretrain.subset(perm[:limit])
        pretrain.source += f", limited to {limit:,} training images"
    elif pretrain is None and limit < len(train):
        train = train.subset(torch.arange(limit))
        train.source += f", limited to {limit:,} training images"
    return train, pretrain


def _refuse_empty(
    source: DatasetSource, train: ImageSet, val: ImageSet, test: ImageSet, val_fraction: float
) -> None:
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


def _checked(source: DatasetSource, folder: Path | None, split: str) -> ImageSet:
    """``source``'s split, refused unless its images have the source's shape and its labels
    name its classes: a damaged or substituted file must not train on nonsense."""
    where = f"the {split} split of {source.title}" + (f" in {folder}" if folder else "")
    fix = "delete the dataset's files so they are downloaded again, or restore the originals"
    try:
        data = source.load_split(folder, split)
    except ValueError as err:  # ImageSet's own checks: not (N, C, H, W), counts that differ
        raise DataError(f"{where} is malformed: {err}", fix) from None
    # Sources of the user's own data declare no shape (shape ()): their images are what they are.
    wrong_shape = bool(source.shape) and tuple(data.images.shape[1:]) != tuple(source.shape)
    if data.images.dtype != torch.uint8 or wrong_shape:
        raise DataError(
            f"{where} holds images of shape {tuple(data.images.shape[1:])} "
            f"({data.images.dtype}), not {tuple(source.shape)} uint8",
            fix,
        )
    labels = data.labels
    if data.labelled and len(labels) and (labels.min() < 0 or labels.max() >= len(data.classes)):
        raise DataError(
            f"{where} has labels from {int(labels.min())} to {int(labels.max())}, outside the "
            f"{len(data.classes)} classes (0 to {len(data.classes) - 1})",
            fix,
        )
    return data
