"""Seeded stratified splits, the device-resident loader and the pixel normalizer."""

from __future__ import annotations

import pytest
import torch

from replab.data import DeviceLoader, Normalizer
from replab.data.splits import stratified_split

# Unbalanced on purpose: 5 classes of very different sizes, interleaved rather than sorted.
COUNTS = [50, 31, 17, 3, 120]


@pytest.fixture
def labels() -> torch.Tensor:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(123))]


# --- stratified_split ---------------------------------------------------------------------


@pytest.mark.parametrize("fractions", [[0.2], [0.2, 0.1], [0.5, 0.25]])
def test_same_seed_same_split(labels, fractions):
    a = stratified_split(labels, fractions, seed=7)
    b = stratified_split(labels, fractions, seed=7)
    assert len(a) == len(fractions) + 1
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_different_seed_different_split(labels):
    a = stratified_split(labels, [0.2, 0.1], seed=7)
    b = stratified_split(labels, [0.2, 0.1], seed=8)
    assert not torch.equal(a[0].sort().values, b[0].sort().values)
    assert not torch.equal(a[2].sort().values, b[2].sort().values)


@pytest.mark.parametrize("fractions", [[0.2], [0.2, 0.1], [0.5, 0.25]])
def test_parts_are_disjoint_and_cover_everything(labels, fractions):
    parts = stratified_split(labels, fractions, seed=0)
    joined = torch.cat(parts)
    assert len(joined) == len(labels)
    assert torch.equal(joined.sort().values, torch.arange(len(labels)))
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not set(a.tolist()) & set(b.tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fractions", [[0.2], [0.2, 0.1], [0.5, 0.25]])
def test_class_proportions_are_kept(labels, fractions, seed):
    parts = stratified_split(labels, fractions, seed=seed)
    shares = [*fractions, 1 - sum(fractions)]
    for part, share in zip(parts, shares, strict=True):
        got = torch.bincount(labels[part], minlength=len(COUNTS)).tolist()
        for cls, n in enumerate(COUNTS):
            assert abs(got[cls] - share * n) <= 1, (cls, got[cls], share * n)


def test_parts_are_not_sorted_by_class(labels):
    train = stratified_split(labels, [0.2], seed=0)[1]
    ordered = labels[train]
    assert not torch.equal(ordered, ordered.sort().values)


# --- DeviceLoader -------------------------------------------------------------------------


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x[i] is a 1x2x2 uint8 image whose pixels encode i, y[i] = i."""
    y = torch.arange(n)
    x = torch.stack([(y * 3) % 256, (y * 5 + 1) % 256, (y * 7 + 2) % 256, (y * 11 + 3) % 256], 1)
    return x.to(torch.uint8).view(n, 1, 2, 2), y


def _epoch(loader: DeviceLoader) -> list[int]:
    return torch.cat([y for _, y in loader]).tolist()


def test_one_shuffled_epoch_visits_every_index_once():
    x, y = _data(103)
    loader = DeviceLoader(x, y, batch_size=10, shuffle=True, seed=0)
    seen = _epoch(loader)
    assert sorted(seen) == list(range(103))
    assert seen != list(range(103))  # actually shuffled


def test_batches_pair_images_with_their_labels_as_unit_floats():
    x, y = _data(103)
    loader = DeviceLoader(x, y, batch_size=10, shuffle=True, seed=0)
    for xb, yb in loader:
        assert xb.dtype == torch.float32
        assert xb.shape[1:] == (1, 2, 2)
        assert xb.min().item() >= 0.0 and xb.max().item() <= 1.0
        torch.testing.assert_close(xb, x[yb].float() / 255)
    assert max(xb.max().item() for xb, _ in loader) > 0.9  # spread over [0, 1], not just small


def test_unshuffled_loader_goes_in_order():
    x, y = _data(25)
    loader = DeviceLoader(x, y, batch_size=10, shuffle=False)
    assert [len(yb) for _, yb in loader] == [10, 10, 5]
    assert _epoch(loader) == list(range(25))


@pytest.mark.parametrize("shuffle", [True, False])
def test_drop_last_and_len(shuffle):
    x, y = _data(25)
    keep = DeviceLoader(x, y, batch_size=10, shuffle=shuffle, seed=0)
    drop = DeviceLoader(x, y, batch_size=10, shuffle=shuffle, seed=0, drop_last=True)
    assert (len(keep), len(drop)) == (3, 2)
    assert [len(yb) for _, yb in keep] == [10, 10, 5]
    assert [len(yb) for _, yb in drop] == [10, 10]
    exact = DeviceLoader(*_data(30), batch_size=10, drop_last=True)
    assert len(exact) == 3 and [len(yb) for _, yb in exact] == [10, 10, 10]


def test_drop_last_drops_different_images_each_epoch():
    x, y = _data(25)
    loader = DeviceLoader(x, y, batch_size=10, seed=0, drop_last=True)
    dropped = [frozenset(range(25)) - frozenset(_epoch(loader)) for _ in range(4)]
    assert all(len(d) == 5 for d in dropped)
    assert len(set(dropped)) > 1


def test_seed_fixes_the_order_and_epochs_differ():
    x, y = _data(50)
    a, b, c = (DeviceLoader(x, y, batch_size=8, seed=s) for s in (1, 1, 2))
    a1, a2 = _epoch(a), _epoch(a)
    assert a1 == _epoch(b)
    assert a1 != _epoch(c)
    assert a1 != a2


def test_state_dict_reproduces_the_next_epoch():
    x, y = _data(50)
    loader = DeviceLoader(x, y, batch_size=8, seed=3)
    _epoch(loader)
    state = loader.state_dict()
    expected = _epoch(loader)
    _epoch(loader)  # the state taken before must not move with the loader

    resumed = DeviceLoader(x, y, batch_size=8, seed=99)
    # the seed alone would differ
    assert _epoch(DeviceLoader(x, y, batch_size=8, seed=99)) != expected
    resumed.load_state_dict(state)
    assert _epoch(resumed) == expected


def test_loader_applies_its_normalizer():
    x, y = _data(40)
    norm = Normalizer.fit(x, "standard")
    loader = DeviceLoader(x, y, batch_size=40, shuffle=False, normalizer=norm)
    ((xb, _),) = list(loader)
    torch.testing.assert_close(xb, (x.float() / 255 - norm.mean) / norm.std)


# --- Normalizer ---------------------------------------------------------------------------


@pytest.fixture
def rgb() -> torch.Tensor:
    """uint8 images whose three channels have clearly different means and spreads."""
    g = torch.Generator().manual_seed(0)
    r = torch.randint(0, 256, (200, 1, 8, 8), generator=g)
    gr = torch.randint(100, 140, (200, 1, 8, 8), generator=g)
    b = torch.randint(0, 30, (200, 1, 8, 8), generator=g)
    return torch.cat([r, gr, b], 1).to(torch.uint8)


def test_standard_normalizer_gives_zero_mean_unit_std_per_channel(rgb):
    norm = Normalizer.fit(rgb, "standard")
    z = norm(rgb)
    assert z.dtype == torch.float32
    torch.testing.assert_close(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    raw = rgb.float() / 255
    torch.testing.assert_close(norm.mean.flatten(), raw.mean((0, 2, 3)))
    assert norm.std.flatten()[0] > 5 * norm.std.flatten()[1]  # really per channel


def test_invert_undoes_standardisation(rgb):
    norm = Normalizer.fit(rgb, "standard")
    torch.testing.assert_close(norm.invert(norm(rgb)), rgb.float() / 255, atol=1e-6, rtol=0)


def test_unit_normalizer_only_scales(rgb):
    norm = Normalizer.fit(rgb, "unit")
    assert norm.mean is None
    torch.testing.assert_close(norm(rgb), rgb.float() / 255)
    x = torch.rand(2, 3, 4, 4)
    assert norm.invert(x) is x


def test_float_input_passes_through(rgb):
    norm = Normalizer.fit(rgb, "standard")
    x = torch.rand(2, 3, 8, 8)
    assert norm(x) is x
    assert Normalizer.fit(x, "standard").mean is None  # nothing to fit on float data


def test_refit_trains_on_every_training_image_and_keeps_the_same_validation_images():
    from replab.data.load import load_splits

    held = load_splits("digits", val_fraction=0.2, seed=3)
    refit = load_splits("digits", val_fraction=0.2, seed=3, refit=True)
    assert len(refit.train) == len(held.train) + len(held.val) and torch.equal(
        refit.val.images, held.val.images
    )
    # the held-out images are added, nothing else moves
    assert torch.equal(refit.train.images[: len(held.train)], held.train.images)
    assert (
        torch.equal(refit.test.images, held.test.images)
        and "validation images included" in refit.train.source
    )
