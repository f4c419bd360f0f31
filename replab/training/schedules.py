"""Learning-rate schedules, registered by name (``trainer.lr_schedule``).

A schedule is a pure function of the step: ``factor(done, total, warmup)`` multiplies each
parameter group's initial learning rate, where ``done`` counts the optimizer steps taken
so far and ``total`` the run's steps. Being a function of the step alone, a resumed run
follows the same curve with nothing extra in its checkpoint.
"""

from __future__ import annotations

import math

from replab.registry import Registry

SCHEDULES = Registry("learning-rate schedule")


@SCHEDULES.register("constant")
def constant(done: int, total: int, warmup: int = 0) -> float:
    return _warm(done, warmup, 1.0)


@SCHEDULES.register("cosine")
def cosine(done: int, total: int, warmup: int = 0) -> float:
    """A half cosine from 1 to 0 over the steps after the linear warm-up."""
    after = max(1, total - warmup)
    return _warm(done, warmup, 0.5 * (1 + math.cos(math.pi * max(0, done - warmup) / after)))


def _warm(done: int, warmup: int, factor: float) -> float:
    """Linear warm-up over the first ``warmup`` steps (step 0 at 1/warmup, as in SimCLR/BYOL)."""
    return factor * (done + 1) / warmup if done < warmup else factor
