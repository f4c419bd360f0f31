"""The dataset registry: ``@DATASETS.register("name")`` on a DatasetSource subclass."""

from replab.registry import Registry

DATASETS = Registry("dataset", expects="replab.data.base:DatasetSource")
