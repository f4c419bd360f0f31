"""Datasets: registered sources, device-resident loaders and seeded splits."""

from replab.data import cifar10, digits, mnist  # noqa: F401  (register the sources)
from replab.data.base import DatasetSource, ImageSet
from replab.data.catalog import Splits, cache_dir, find, load_splits
from replab.data.loader import DeviceLoader, Normalizer
from replab.data.registry import DATASETS

__all__ = ["DATASETS", "DatasetSource", "DeviceLoader", "ImageSet", "Normalizer", "Splits", "cache_dir", "find", "load_splits"]
