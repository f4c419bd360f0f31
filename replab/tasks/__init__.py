"""Tasks: how a batch becomes a loss. ``build_task`` turns a spec into a ready task."""

from __future__ import annotations

from replab.spec import ExperimentSpec
from replab.tasks import autoencode, classify, contrastive  # noqa: F401  (register)
from replab.tasks.base import Task
from replab.tasks.registry import TASKS
from replab.tasks.transfer import freeze, load_pretrained


def build_task(spec: ExperimentSpec, shape: tuple[int, ...], num_classes: int) -> Task:
    task = TASKS.get(spec.task).from_spec(spec.model, spec.objective, shape, num_classes, augment=spec.augment)
    if spec.model.pretrained is not None:
        load_pretrained(task.model, spec.model.pretrained)
    freeze(task.model, spec.model.freeze)
    task.frozen = list(spec.model.freeze)
    return task


__all__ = ["TASKS", "Task", "build_task"]
