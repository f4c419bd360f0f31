"""Tasks: how a batch becomes a loss. ``build_task`` turns a spec into a ready task."""

from __future__ import annotations

from replab.spec import ExperimentSpec
from replab.tasks import autoencode, classify  # noqa: F401  (register)
from replab.tasks.base import Task
from replab.tasks.registry import TASKS


def build_task(spec: ExperimentSpec, shape: tuple[int, ...], num_classes: int) -> Task:
    return TASKS.get(spec.task).from_spec(spec.model, spec.objective, shape, num_classes)


__all__ = ["TASKS", "Task", "build_task"]
