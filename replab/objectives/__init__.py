"""Training objectives, one per file, registered in OBJECTIVES."""

from replab.objectives.registry import OBJECTIVES
from replab.registry import discover

discover(__name__)  # every module registers its objective: a new loss is one new file

__all__ = ["OBJECTIVES"]
