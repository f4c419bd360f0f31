"""The objective registry: one loss per file (as in lightly's ``loss/``).

Each objective is an ``nn.Module`` with ``forward(prediction, target)`` and a ``target``
attribute saying what it compares against: ``"input"`` (reconstruction) or ``"label"``.
"""

from replab.registry import Registry

OBJECTIVES = Registry("objective")
