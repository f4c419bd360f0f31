"""The index of a packed dataset: what ``replab data pack`` writes and streaming reads.

A packed dataset is a folder (or a URL serving one) of WebDataset tar shards and one
``index.json``. Each sample of a shard is ``<key>.<ext>`` (the image as it was encoded:
``png``, ``jpg``, ``jpeg``, ``bmp``, ``webp``, ``tif``, ``tiff``; tensors are written as
lossless PNG) and ``<key>.cls`` (the label as a decimal integer, -1 when the split has no
labels). Keys are the sample's position in its split, nine digits, so a key never holds the
dot WebDataset groups files by. Samples are written in a seeded shuffled order, so the head
of a split is a random sample of it.

The index is plain JSON read into these models: nothing in it is executed or unpickled.
"""

from __future__ import annotations

import warnings

from pydantic import BaseModel, ConfigDict, Field, field_validator

# torchvision 0.29 marks its image codecs deprecated in favour of TorchCodec, which this pin of
# torch does not ship; they are the fast libjpeg-turbo/libpng path for packing and streaming
warnings.filterwarnings(
    "ignore", "The image decoding and encoding capabilities of TorchVision", DeprecationWarning
)

INDEX = "index.json"
FORMAT = "replab-shards"
VERSION = 1
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff")
SPLITS = ("train", "val", "test")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShardEntry(_Strict):
    """One tar file: its name relative to the index, samples, size and SHA-256."""

    name: str
    count: int = Field(ge=1)
    bytes: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # a shard name is joined to the index's folder or URL: no way out of it
        if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".tar"):
            raise ValueError(f"shard name {name!r} must be a plain file name ending in .tar")
        return name


class SplitIndex(_Strict):
    """A split's shards in order, its sample count and its count per class name."""

    count: int = Field(ge=1)
    counts: dict[str, int] = Field(default_factory=dict)  # empty when unlabelled
    shards: list[ShardEntry] = Field(min_length=1)


class ShardIndex(_Strict):
    """``index.json``: the dataset's classes, image shape and splits, and how it was packed.

    ``shape`` is the (C, H, W) every image decodes to, or None when sizes vary (a run then
    needs ``data.image_size``). ``val_fraction``/``test_fraction`` say how validation (and
    test, where the source had none) were carved at pack time with ``seed``.
    """

    format: str = FORMAT
    version: int = VERSION
    title: str  # the source dataset's title, e.g. "Fashion-MNIST"
    source: str  # what was packed, as a run describes its data
    classes: list[str] = Field(default_factory=list)
    shape: list[int] | None = Field(None, min_length=3, max_length=3)
    seed: int = 0
    val_fraction: float = Field(gt=0.0, lt=1.0)
    test_fraction: float | None = None
    skipped: int = 0  # unreadable images left out with --skip-corrupt
    splits: dict[str, SplitIndex]

    @field_validator("splits")
    @classmethod
    def _known_splits(cls, splits: dict[str, SplitIndex]) -> dict[str, SplitIndex]:
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown or not {"train", "val", "test"} <= set(splits):
            raise ValueError(f"splits must be train, val and test (got {sorted(splits)})")
        return splits
