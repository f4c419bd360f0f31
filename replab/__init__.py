"""replab: a representation-learning lab for PyTorch.

Layers, top to bottom (imports only point downwards):
    cli -> studies -> training, evaluation, reporting -> tasks -> models, objectives, data
with ``spec``, ``registry`` and ``errors`` usable from every layer.
"""

__version__ = "0.1.0"
