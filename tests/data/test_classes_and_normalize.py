"""data.classes (pick and relabel classes before the split) and fixed {mean,
std} normalisation (study D)."""

from __future__ import annotations

import pytest
import torch

from replab.data import ImageSet, Normalizer, load_splits
from replab.errors import ConfigError
from replab.recipes import load_spec

CLASSES = ["airplane", "cat", "frog", "horse"]


def toy() -> ImageSet:
    # image i is filled with value i, so every image can be traced after selection
    labels = torch.tensor([0, 2, 3, 1, 2, 3, 3, 0, 2])
    images = (
        torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    )
    return ImageSet(images, labels, list(CLASSES), source="toy")


def test_selected_classes_are_relabelled_in_the_order_given():
    picked = toy().select_classes(["horse", "frog"])
    assert picked.classes == ["horse", "frog"]
    ids = picked.images[:, 0, 0, 0].tolist()
    assert ids == [1, 2, 4, 5, 6, 8]  # frogs and horses only, in their original order
    # horse (old 3) -> 0, frog (old 2) -> 1
    assert picked.labels.tolist() == [1, 0, 1, 0, 0, 1]
    assert "classes horse, frog only: 6 images (labels horse=0, frog=1)" in picked.source


@pytest.mark.parametrize(
    "names, needle",
    [(["frog", "dragon"], "'dragon' is not a class"), (["frog", "frog"], "names a class twice")],
)
def test_bad_class_names_are_config_errors_listing_the_classes(names, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        toy().select_classes(names)
    if "dragon" in needle:
        assert "airplane, cat, frog, horse" in err.value.fix


def test_unknown_class_through_load_splits_names_the_datasets_classes():
    with pytest.raises(ConfigError, match="use names from: 0, 1, 2"):
        load_splits("digits", classes=["7", "eleven"])


def test_split_is_stratified_over_the_kept_classes_only():
    full = load_splits("digits", val_fraction=0.1, test_fraction=0.2, seed=3)
    pool = torch.cat([full.train.labels, full.val.labels, full.test.labels])
    picked = load_splits("digits", val_fraction=0.1, test_fraction=0.2, seed=3, classes=["7", "2"])
    for new, old in ((0, 7), (1, 2)):
        n = int((pool == old).sum())
        # the split cuts each kept class at the fractions: test first, then val, the rest trains
        assert int((picked.test.labels == new).sum()) == round(0.2 * n)
        assert int((picked.val.labels == new).sum()) == round(0.1 * n)
        assert int((picked.train.labels == new).sum()) == n - round(0.2 * n) - round(0.1 * n)
    assert picked.train.classes == ["7", "2"] and set(picked.train.labels.tolist()) == {0, 1}
    assert "classes 7, 2 only" in picked.source


@pytest.mark.data
def test_cifar10_frog_and_horse_become_0_and_1(data_dir):
    from replab.data.cifar10 import CIFAR10

    raw = CIFAR10().load_split(CIFAR10().locate(data_dir), "test")
    splits = load_splits(
        "cifar10", root=str(data_dir), download=False, val_fraction=0.3, classes=["frog", "horse"]
    )
    assert torch.equal(splits.test.images[splits.test.labels == 0], raw.images[raw.labels == 6])
    assert torch.equal(splits.test.images[splits.test.labels == 1], raw.images[raw.labels == 7])
    assert len(splits.train) + len(splits.val) > 0 and set(splits.train.labels.tolist()) == {0, 1}


# --- fixed normalisation ------------------------------------------------------------------


def test_fixed_mean_and_std_values_and_invert():
    images = (
        torch.tensor([0, 64, 255], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 2, 2).clone()
    )
    norm = Normalizer.fit(images, {"mean": 0.25, "std": 0.25})
    x = norm(images)
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-1.0, (64 / 255 - 0.25) / 0.25, 3.0]))
    torch.testing.assert_close(norm.invert(x), images.float() / 255)
    per_channel = Normalizer.fit(images, {"mean": [0.0, 0.5, 1.0], "std": [1.0, 0.5, 0.25]})(images)
    torch.testing.assert_close(
        per_channel[0, :, 0, 0], torch.tensor([0.0, (64 / 255 - 0.5) / 0.5, 0.0])
    )


def test_fixed_normalisation_checks_the_channels():
    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="has 2 values but the images have 3 channel"):
        Normalizer.fit(images, {"mean": [0.1, 0.2], "std": 0.25})


@pytest.mark.parametrize(
    "value, needle",
    [
        ("{mean: 0.25, std: 0}", "std must be > 0"),
        ("{mean: 0.25, std: [0.2, -1, 0.2]}", "std must be > 0"),
        ("{mean: 0.25}", "missing"),
        ("whiten", "normalize"),
    ],
)
def test_bad_normalize_values_are_config_errors(value, needle):
    with pytest.raises(ConfigError, match=needle):
        load_spec("d1-cifar10-svm", [f"data.normalize={value}"])


def test_normalize_mapping_reaches_the_spec():
    spec = load_spec("d1-cifar10-svm", ["data.normalize={mean: [0.1, 0.2, 0.3], std: 0.5}"])
    assert spec.data.normalize.mean == [0.1, 0.2, 0.3] and spec.data.normalize.std == 0.5
