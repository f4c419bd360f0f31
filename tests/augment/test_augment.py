"""Batched augmentations: exact identities, torchvision semantics, randomness, one resample."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from replab.augment import AUGMENTATIONS, Augment
from replab.augment.color import shift_hue
from replab.augment.geometric import rotation_matrix
from replab.augment.pipeline import warp
from replab.errors import ConfigError
from replab.spec import Component


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gradient(n: int = 4, c: int = 3, size: int = 32) -> torch.Tensor:
    """A smooth ramp along x + y, in [0.1, 0.9]."""
    ramp = torch.linspace(0, 1, size)
    image = 0.1 + 0.4 * (ramp.view(1, -1) + ramp.view(-1, 1))
    return image.expand(n, c, size, size).clone()


SIMCLR = [
    {"name": "random_resized_crop"},
    {"name": "horizontal_flip"},
    {"name": "color_jitter"},
    {"name": "grayscale"},
]


def test_identity_parameters_give_back_the_input():
    x = torch.rand(5, 3, 16, 24)
    augment = Augment.from_components(
        [
            {"name": "random_resized_crop", "scale": [1, 1], "ratio": [1.5, 1.5]},
            {"name": "rotation", "degrees": 0},
            {"name": "horizontal_flip", "p": 0},
            {"name": "affine", "translate": 0, "scale": [1, 1], "shear": 0},
        ]
    )
    torch.testing.assert_close(augment(x), x, atol=1e-5, rtol=0)
    square = torch.rand(3, 3, 16, 16)
    crop = Augment.from_components(
        [{"name": "random_resized_crop", "scale": [1, 1], "ratio": [1, 1]}]
    )
    torch.testing.assert_close(crop(square), square, atol=1e-5, rtol=0)


def test_empty_pipeline_returns_the_input():
    x = torch.rand(2, 3, 8, 8)
    assert Augment.from_components([])(x) is x


def test_flip_with_p_one_mirrors():
    x = torch.rand(4, 3, 10, 12)
    flip = Augment.from_components([{"name": "horizontal_flip", "p": 1.0}])
    torch.testing.assert_close(flip(x), x.flip(-1), atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_matches_rot90():
    x = torch.rand(3, 2, 9, 9)
    turned = warp(x, rotation_matrix(torch.full((3,), 90.0)))
    torch.testing.assert_close(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)
    fixed = Augment.from_components([{"name": "rotation", "degrees": [90, 90]}])
    torch.testing.assert_close(fixed(x), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotation_keeps_a_round_blob_round_on_a_wide_image():
    """Rotations are conjugated into the normalized frame, so they stay rigid when H != W."""
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(40.0), indexing="ij")
    blob = torch.exp(-((xx - 19.5) ** 2 + (yy - 9.5) ** 2) / 18).view(1, 1, 20, 40)
    turned = warp(blob, rotation_matrix(torch.tensor([37.0]), size=(20, 40)))
    torch.testing.assert_close(turned, blob, atol=0.03, rtol=0)  # bilinear blur only
    squashed = warp(blob, rotation_matrix(torch.tensor([37.0])))  # treated as square: sheared
    assert (squashed - blob).abs().max() > 0.2


def test_resized_crop_of_a_quarter_zooms_in():
    x = _gradient()
    crop = Augment.from_components(
        [{"name": "random_resized_crop", "scale": [0.25, 0.25], "ratio": [1, 1]}]
    )
    y = crop(x, _seeded(0))
    for image, out in zip(x, y, strict=True):
        lo, hi = out.min().item(), out.max().item()
        assert image.min() - 1e-5 <= lo and hi <= image.max() + 1e-5
        span = image.max() - image.min()  # a half-width crop of a ramp spans half its range
        assert hi - lo == pytest.approx(0.5 * span.item(), rel=0.1)


def test_resized_crop_falls_back_to_a_centre_crop_with_the_ratio_clamped():
    crop = AUGMENTATIONS.build(
        "random_resized_crop", {"scale": [1, 1], "ratio": [1, 1]}, where="test"
    )
    m = crop.matrices(3, "cpu", None, size=(10, 20))  # wide image, square crop: the middle half
    torch.testing.assert_close(m[:, :2], torch.tensor([[0.5, 0, 0], [0, 1, 0]]).expand(3, 2, 3))


def test_shape_dtype_device_are_kept():
    for x in (torch.rand(6, 3, 32, 32), torch.rand(6, 1, 28, 28, dtype=torch.float64)):
        y = Augment.from_components(SIMCLR + [{"name": "rotation"}, {"name": "affine"}])(x)
        assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device)


def test_randomness_is_per_image_and_seeded():
    x = torch.rand(1, 3, 16, 16).expand(8, 3, 16, 16).contiguous()
    augment = Augment.from_components(SIMCLR)
    y = augment(x, _seeded(3))
    assert all(not torch.allclose(y[0], y[i]) for i in range(1, 8))
    torch.testing.assert_close(augment(x, _seeded(3)), y, atol=0, rtol=0)
    assert not torch.allclose(augment(x, _seeded(4)), y)


def test_grayscale_uses_bt601_luma():
    x = torch.rand(4, 3, 8, 8)
    y = Augment.from_components([{"name": "grayscale", "p": 1.0}])(x)
    want = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for c in range(3):
        torch.testing.assert_close(y[:, c], want)


def test_color_jitter_stays_in_unit_range_and_respects_p():
    x = torch.rand(64, 3, 8, 8)
    strong = {"brightness": 0.9, "contrast": 0.9, "saturation": 0.9, "hue": 0.5}
    y = Augment.from_components([{"name": "color_jitter", "p": 1.0, **strong}])(x, _seeded(0))
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.isclose(y, x).all(dim=(1, 2, 3)).any()
    off = Augment.from_components([{"name": "color_jitter", "p": 0.0, **strong}])
    assert torch.equal(off(x), x)


def test_hue_shift_matches_torchvision():
    from torchvision.transforms.functional import adjust_hue

    x = torch.rand(3, 3, 12, 12)
    x[0, :, :3, :3] = 0.5  # gray pixels: no hue
    for shift in (0.07, -0.2, 0.5):
        got = shift_hue(x, torch.full((3,), shift))
        torch.testing.assert_close(got, adjust_hue(x, shift), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_op_runs_on_one_channel(name):
    x = torch.rand(4, 1, 28, 28)
    y = Augment.from_components([{"name": name}])(x, _seeded(0))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_chroma_ops_are_no_ops_on_one_channel():
    x = torch.rand(4, 1, 10, 10)
    assert torch.equal(Augment.from_components([{"name": "grayscale", "p": 1.0}])(x), x)
    chroma = [
        {
            "name": "color_jitter",
            "brightness": 0,
            "contrast": 0,
            "saturation": 0.9,
            "hue": 0.5,
            "p": 1.0,
        }
    ]
    assert torch.equal(Augment.from_components(chroma)(x), x)


def test_spec_components_are_accepted():
    augment = Augment.from_components([Component(name="horizontal_flip", p=1.0)])
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(augment(x), x.flip(-1), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("components", "fragment"),
    [
        ([{"name": "horizontal_flip"}, {"name": "blur"}], "augment[1]"),
        (
            [{"name": "horizontal_flip"}, {"name": "grayscale"}, {"name": "rotation", "angle": 3}],
            "augment[2]",
        ),
        ([{"name": "color_jitter", "hue": "lots"}], "augment[0]"),
        ([{"name": "random_resized_crop", "scale": [0.9, 0.1]}], "augment[0]"),
        ([{"p": 0.5}], "augment[0]"),
    ],
)
def test_bad_entries_name_their_index(components, fragment):
    with pytest.raises(ConfigError) as err:
        Augment.from_components(components)
    assert fragment in err.value.message


def test_one_grid_sample_per_batch(monkeypatch):
    calls = []
    original = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", counting)
    augment = Augment.from_components(
        [
            {"name": "random_resized_crop"},
            {"name": "horizontal_flip"},
            {"name": "rotation"},
            {"name": "affine", "shear": 5},
            {"name": "color_jitter"},
        ]
    )
    augment(torch.rand(8, 3, 16, 16))
    assert len(calls) == 1
    Augment.from_components([{"name": "color_jitter"}, {"name": "grayscale"}])(
        torch.rand(8, 3, 16, 16)
    )
    assert len(calls) == 1


def test_resized_crops_have_the_asked_area_and_ratio_and_stay_inside():
    crop = AUGMENTATIONS.build("random_resized_crop", {}, where="test")
    m = crop.matrices(2000, "cpu", _seeded(1), size=(24, 32))
    fw, fh, cx, cy = m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2]
    area, ratio = fw * fh, fw * 32 / (fh * 24)
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    assert (cx.abs() + fw).max() <= 1 + 1e-6 and (cy.abs() + fh).max() <= 1 + 1e-6
    assert area.std() > 0.1 and cx.std() > 0.05
