"""scikit-learn's bundled 8x8 digits: the zero-download default dataset (1,797 images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from replab.data.base import DatasetSource, ImageSet
from replab.data.registry import DATASETS
from replab.io import import_limited


@DATASETS.register("digits")
class Digits(DatasetSource):
    name = "digits"
    title = "scikit-learn digits"
    classes = tuple(str(i) for i in range(10))
    shape = (1, 8, 8)
    has_test_split = False
    embedded = True

    def locate(self, root: Path) -> Path | None:
        return None

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        load_digits = import_limited("sklearn.datasets").load_digits

        bunch = load_digits()
        # Pixel values are counts 0..16; scale to the 0..255 of every other image dataset.
        images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
        return ImageSet(
            torch.from_numpy(images).unsqueeze(1),
            torch.from_numpy(bunch.target.astype(np.int64)),
            list(self.classes),
            source=f"scikit-learn digits ({len(bunch.target):,} images, bundled with scikit-learn)",
        )
