"""What every dataset source provides, and the in-memory form of a split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from replab.errors import ConfigError

UNLABELLED = -1  # the label of every image of an unlabelled split


@dataclass
class ImageSet:
    """One split held as tensors: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    An unlabelled split (a folder of images without class subfolders, STL-10's ``unlabeled``)
    has no ``classes`` and every label ``UNLABELLED``; only tasks that need no labels train
    on it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.classes, self.source)

    def select_classes(self, names: list[str]) -> ImageSet:
        """Only the images of the classes ``names``, relabelled 0..n-1 in the order given.

        The order is the point: ``[frog, horse]`` makes frog 0 and horse 1, which a binary
        hinge reads as -1/+1 (report 002 maps CIFAR-10's 6 to -1 and 7 to +1).
        """
        unknown = [n for n in names if n not in self.classes]
        if unknown or not names:
            raise ConfigError(
                f"data.classes {list(names)}: "
                f"{', '.join(map(repr, unknown)) or 'no class'} is not a class of this dataset",
                f"use names from: {', '.join(self.classes)}",
            )
        if len(set(names)) != len(names):
            raise ConfigError(
                f"data.classes {list(names)} names a class twice", "list each class once"
            )
        old = torch.tensor([self.classes.index(n) for n in names])
        relabel = torch.full((len(self.classes),), -1, dtype=torch.int64)
        relabel[old] = torch.arange(len(names))
        keep = torch.isin(self.labels, old)
        labels = ", ".join(f"{n}={i}" for i, n in enumerate(names))
        kept = f"classes {', '.join(names)} only: {int(keep.sum()):,} images (labels {labels})"
        return ImageSet(
            self.images[keep], relabel[self.labels[keep]], list(names), f"{self.source}, {kept}"
        )


@dataclass
class Resource:
    """A file of a dataset's official download, with the md5 the publishers give for it."""

    filename: str
    md5: str


class DatasetSource:
    """A named dataset: where its files are looked for, how they are read and fetched.

    Subclasses set the class attributes and implement ``locate`` and ``load_split``; sources
    with an official download also set ``mirrors`` and ``resources``.
    """

    name: str = ""
    title: str = ""
    classes: tuple[str, ...] = ()
    shape: tuple[int, int, int] = (1, 28, 28)
    has_test_split: bool = True
    embedded: bool = False  # ships inside an installed package: never downloaded
    mirrors: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()

    # splits beyond train/test that ``data.train_split`` may name (STL-10's ``unlabeled``)
    extra_splits: tuple[str, ...] = ()
    # the dataset is the user's own folder or file, named by data.root: never searched for
    # in $REPLAB_DATA or the cache, never downloaded
    user_path: bool = False
    # what data.image_size / data.channels / data.skip_corrupt asked for; set by load_splits
    # before ``locate``, for sources that decode images themselves (image_folder)
    image_size: int | None = None
    channels: int | None = None
    skip_corrupt: bool = False

    def locate(self, root: Path) -> Path | None:
        """The folder under ``root`` holding this dataset's files, or None."""
        raise NotImplementedError

    def test_split(self, folder: Path | None) -> bool:
        """Whether ``folder`` holds a test split of its own (else test is carved by seed)."""
        return self.has_test_split

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        """Read ``split`` ('train' or 'test'; 'all' where there is no test split)."""
        raise NotImplementedError

    def download(
        self, cache: Path, mirrors: list[str] | None = None, checksums: dict[str, str] | None = None
    ) -> Path:
        """Fetch the official files into ``cache`` and return the folder ``locate`` finds there."""
        raise NotImplementedError(f"{self.name} has no download")
