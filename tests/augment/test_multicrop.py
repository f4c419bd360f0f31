"""multi_crop: 2 global + N local crops per image from one pipeline, each view also through the
list's other ops; two plain views without it (unchanged draws)."""

from __future__ import annotations

import pytest
import torch

from replab.augment import Augment
from replab.errors import ConfigError


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_multi_crop_gives_two_global_then_local_views_of_the_image_size():
    augment = Augment.from_components([{"name": "multi_crop", "local_crops": 3}])
    x = torch.rand(5, 1, 28, 28)
    views = augment.views(x, _seeded(0))
    assert augment.view_count == 5 and len(views) == 5
    assert all(v.shape == x.shape for v in views)


def test_local_crops_zoom_in_more_than_global_ones():
    """The area a crop covers shows in its matrix's scale: global crops cover at least 0.4 of
    the image, local ones at most 0.2 (checked on the crop matrices themselves)."""
    augment = Augment.from_components(
        [
            {
                "name": "multi_crop",
                "local_crops": 2,
                "global_scale": [0.4, 1.0],
                "local_scale": [0.05, 0.2],
            }
        ]
    )
    plan = augment.multi_crop
    for view, (low, high) in [(0, (0.4, 1.0)), (1, (0.4, 1.0)), (2, (0.05, 0.2)), (3, (0.05, 0.2))]:
        m = plan.crop_matrices(view, 500, torch.device("cpu"), _seeded(view))
        area = (m[:, 0, 0] * m[:, 1, 1]).abs()
        assert ((area >= low - 1e-6) & (area <= high + 1e-6)).all()


def test_each_crop_also_goes_through_the_lists_other_ops():
    """With a certain flip after the crop, every view is the flipped crop."""
    x = torch.rand(3, 1, 8, 8)
    plain = Augment.from_components([{"name": "multi_crop", "local_crops": 1}])
    flipped = Augment.from_components(
        [{"name": "multi_crop", "local_crops": 1}, {"name": "horizontal_flip", "p": 1.0}]
    )
    a = plain.views(x, _seeded(3))
    # the flip draws after the crop: replay the crops' draws then compare
    b = flipped.views(x, _seeded(3))
    assert not torch.allclose(a[0], b[0])
    full = Augment.from_components(
        [{"name": "multi_crop", "local_crops": 0, "global_scale": [1.0, 1.0], "ratio": [1.0, 1.0]}]
    )
    flip_full = Augment.from_components(
        [
            {
                "name": "multi_crop",
                "local_crops": 0,
                "global_scale": [1.0, 1.0],
                "ratio": [1.0, 1.0],
            },
            {"name": "horizontal_flip", "p": 1.0},
        ]
    )
    torch.testing.assert_close(full.views(x, _seeded(1))[0], x, atol=1e-5, rtol=0)
    torch.testing.assert_close(flip_full.views(x, _seeded(1))[0], x.flip(-1), atol=1e-5, rtol=0)


def test_without_multi_crop_views_are_two_calls_of_the_pipeline():
    augment = Augment.from_components(
        [{"name": "random_resized_crop"}, {"name": "horizontal_flip"}]
    )
    x = torch.rand(4, 3, 16, 16)
    views = augment.views(x, _seeded(5))
    g = _seeded(5)
    torch.testing.assert_close(views[0], augment(x, g))
    torch.testing.assert_close(views[1], augment(x, g))


def test_bad_multi_crop_settings_are_config_errors():
    with pytest.raises(ConfigError):
        Augment.from_components([{"name": "multi_crop", "local_crops": -1}])
    with pytest.raises(ConfigError):
        Augment.from_components([{"name": "multi_crop", "local_scale": [0.5, 0.1]}])
    with pytest.raises(ConfigError, match="more than once"):
        Augment.from_components([{"name": "multi_crop"}, {"name": "multi_crop"}])
