"""The model registry: encoders, decoders and heads, each one class in one file."""

from replab.registry import Registry

MODELS = Registry("model", expects="torch.nn:Module")
