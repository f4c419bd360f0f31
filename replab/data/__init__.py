"""Datasets: registered sources, device-resident loaders and seeded splits."""

from replab.data.base import DatasetSource, ImageSet
from replab.data.load import Splits, cache_dir, find, load_splits, planned_shape
from replab.data.loader import DeviceLoader, Normalizer
from replab.data.registry import DATASETS
from replab.registry import discover

discover(__name__)  # every module registers its dataset sources: a new dataset is one new file

__all__ = [
    "DATASETS",
    "DatasetSource",
    "DeviceLoader",
    "ImageSet",
    "Normalizer",
    "Splits",
    "cache_dir",
    "find",
    "load_splits",
    "planned_shape",
]
