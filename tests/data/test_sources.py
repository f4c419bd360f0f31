"""The registered sources read the real files under REPLAB_DATA (and digits from scikit-learn).

Expected figures come from the data README (counts, sha256 of decompressed content) and
from the datasets' published label histograms.
"""

from __future__ import annotations

import gzip
import hashlib

import pytest
import torch

from replab.data import DATASETS, ImageSet, load_splits
from replab.data.splits import stratified_split

pytestmark = pytest.mark.data

# sha256 of the decompressed IDX files, from /work/shared/data/README.md.
README_SHA256 = {
    (
        "MNIST",
        "t10k-labels-idx1-ubyte",
    ): "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    (
        "MNIST",
        "t10k-images-idx3-ubyte",
    ): "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    (
        "MNIST",
        "train-labels-idx1-ubyte",
    ): "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    (
        "FashionMNIST",
        "t10k-labels-idx1-ubyte",
    ): "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    (
        "FashionMNIST",
        "train-labels-idx1-ubyte",
    ): "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
}

# Published label histograms.
HISTOGRAMS = {
    ("mnist", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("mnist", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion_mnist", "train"): [6000] * 10,
    ("fashion_mnist", "test"): [1000] * 10,
}
FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


@pytest.fixture(scope="module")
def idx_splits(data_dir) -> dict[tuple[str, str], ImageSet]:
    """Each IDX dataset's train and test split, read once for the module."""
    out = {}
    for name, folder in FOLDERS.items():
        source = DATASETS.get(name)()
        located = source.locate(data_dir)
        assert located == data_dir / folder / "raw"
        for split in ("train", "test"):
            out[name, split] = source.load_split(located, split)
    return out


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("split, count", [("train", 60_000), ("test", 10_000)])
def test_idx_datasets_have_the_published_counts_and_shape(idx_splits, name, split, count):
    data = idx_splits[name, split]
    assert len(data) == count
    assert data.images.shape == (count, 1, 28, 28)
    assert data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.labels.unique().tolist() == list(range(10))
    assert data.labels.bincount().tolist() == HISTOGRAMS[name, split]
    assert data.images.max().item() == 255 and data.images.min().item() == 0
    assert f"({count:,} images)" in data.source


def test_mnist_and_fashion_are_different_data(idx_splits):
    assert not torch.equal(
        idx_splits["mnist", "test"].images, idx_splits["fashion_mnist", "test"].images
    )
    assert DATASETS.get("fashion_mnist")().classes[9] == "Ankle boot"


@pytest.mark.parametrize("folder, stem", sorted(README_SHA256))
def test_decompressed_files_match_the_readme(data_dir, folder, stem):
    content = gzip.decompress((data_dir / folder / "raw" / f"{stem}.gz").read_bytes())
    assert hashlib.sha256(content).hexdigest() == README_SHA256[folder, stem]


@pytest.mark.parametrize("folder, stem", sorted(README_SHA256))
def test_read_idx_returns_exactly_the_readme_content(idx_splits, folder, stem):
    """Rebuild the IDX file from what load_split returned: it must hash to the README value."""
    name = {v: k for k, v in FOLDERS.items()}[folder]
    split = "test" if stem.startswith("t10k") else "train"
    data = idx_splits[name, split]
    if "labels" in stem:
        array = data.labels.to(torch.uint8).numpy()
        header = bytes([0, 0, 8, 1]) + len(array).to_bytes(4, "big")
    else:
        array = data.images.squeeze(1).numpy()
        header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    assert hashlib.sha256(header + array.tobytes()).hexdigest() == README_SHA256[folder, stem]


def test_cifar10_mini_is_read_and_labelled_a_subset(data_dir):
    source = DATASETS.get("cifar10")()
    folder = source.locate(data_dir)
    assert folder == data_dir / "cifar10-mini" / "cifar-10-batches-py"

    train, test = source.load_split(folder, "train"), source.load_split(folder, "test")

    assert (len(train), len(test)) == (5_170, 1_017)
    assert train.images.shape == (5_170, 3, 32, 32) and train.images.dtype == torch.uint8
    for split in (train, test):
        counts = split.labels.bincount(minlength=10)
        assert len(counts) == 10 and counts.min().item() > 0.5 * len(split) / 10  # roughly balanced
    assert "5,170 images, a subset of the full 50,000" in train.source
    assert "1,017 images, a subset of the full 10,000" in test.source
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"


def test_cifar10_mini_through_load_splits(data_dir):
    splits = load_splits("cifar10", root=str(data_dir), download=False, val_fraction=0.1, seed=0)
    assert len(splits.train) + len(splits.val) == 5_170
    assert len(splits.test) == 1_017
    assert "a subset" in splits.source


def test_digits_is_embedded_and_spread_to_255(tmp_path):
    source = DATASETS.get("digits")()
    assert source.embedded and not source.has_test_split
    assert source.locate(tmp_path) is None

    data = source.load_split(None, "all")

    assert len(data) == 1_797
    assert data.images.shape == (1_797, 1, 8, 8) and data.images.dtype == torch.uint8
    assert data.images.min().item() == 0 and data.images.max().item() == 255
    allowed = {round(k * 255 / 16) for k in range(17)}
    assert set(data.images.unique().tolist()) <= allowed
    assert len(data.images.unique()) == 17  # every level 0..16 occurs
    assert data.labels.unique().tolist() == list(range(10))
    assert "1,797 images" in data.source


def test_digits_load_splits_carves_test_and_val_from_one_pool():
    splits = load_splits("digits", download=False, val_fraction=0.1, test_fraction=0.2, seed=5)
    pool = DATASETS.get("digits")().load_split(None, "all")
    test_idx, val_idx, train_idx = stratified_split(pool.labels, [0.2, 0.1], 5)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1_797
    assert abs(len(splits.test) - 0.2 * 1_797) <= 10 and abs(len(splits.val) - 0.1 * 1_797) <= 10
    for part, idx in ((splits.train, train_idx), (splits.val, val_idx), (splits.test, test_idx)):
        assert torch.equal(part.images, pool.images[idx])
        assert torch.equal(part.labels, pool.labels[idx])


@pytest.fixture(scope="module")
def mnist_pool(data_dir) -> ImageSet:
    source = DATASETS.get("mnist")()
    return source.load_split(source.locate(data_dir), "train")


def test_load_splits_val_is_seeded_disjoint_and_stratified(data_dir, mnist_pool):
    a = load_splits("mnist", root=str(data_dir), download=False, val_fraction=0.1, seed=3)
    b = load_splits("mnist", root=str(data_dir), download=False, val_fraction=0.1, seed=3)
    c = load_splits("mnist", root=str(data_dir), download=False, val_fraction=0.1, seed=4)

    # Deterministic per seed, different across seeds.
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.val.images, c.val.images)

    # The parts are the seed's stratified split of the official train pool: disjoint, covering it.
    val_idx, train_idx = stratified_split(mnist_pool.labels, [0.1], 3)
    assert not set(val_idx.tolist()) & set(train_idx.tolist())
    assert len(val_idx) + len(train_idx) == 60_000
    assert torch.equal(a.val.images, mnist_pool.images[val_idx])
    assert torch.equal(a.train.images, mnist_pool.images[train_idx])
    val_counts = a.val.labels.bincount().tolist()
    for got, n in zip(val_counts, HISTOGRAMS["mnist", "train"], strict=True):
        assert abs(got - 0.1 * n) <= 1

    # The test split is the official one, untouched by the seed.
    assert len(a.test) == 10_000 and torch.equal(a.test.images, c.test.images)
    assert a.test.labels.bincount().tolist() == HISTOGRAMS["mnist", "test"]


def test_limit_train_keeps_the_head_of_the_shuffled_train(data_dir):
    full = load_splits("mnist", root=str(data_dir), download=False, seed=1)
    limited = load_splits("mnist", root=str(data_dir), download=False, seed=1, limit_train=1_000)

    assert len(limited.train) == 1_000
    assert torch.equal(limited.train.images, full.train.images[:1_000])
    assert torch.equal(limited.val.labels, full.val.labels)  # val and test are not limited
    assert len(limited.test) == 10_000
    assert "limited to 1,000 training images" in limited.train.source
    assert len(limited.train.labels.unique()) == 10  # a random head, not one class

    too_many = load_splits("mnist", root=str(data_dir), download=False, seed=1, limit_train=10**6)
    assert len(too_many.train) == len(full.train)
    assert "limited" not in too_many.train.source
