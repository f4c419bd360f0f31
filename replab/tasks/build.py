"""``build_task``: a spec to a ready task (model built, initialised,
pretrained parts loaded, frozen)."""

from __future__ import annotations

from replab.models import Momentum
from replab.models.init import initialise
from replab.spec import ExperimentSpec
from replab.tasks.base import Task, task_options
from replab.tasks.registry import TASKS
from replab.tasks.transfer import freeze, load_pretrained


def build_task(spec: ExperimentSpec, shape: tuple[int, ...], num_classes: int) -> Task:
    cls = TASKS.get(spec.task.name)
    task = cls.from_spec(
        spec.model,
        spec.objective,
        shape,
        num_classes,
        augment=spec.augment,
        **task_options(cls, spec.task),
    )
    # before the pretrained weights, which replace what they cover
    initialise(task.model, spec.model.init)
    frozen = list(spec.model.freeze)
    if spec.model.pretrained is not None:
        copied = load_pretrained(task.model, spec.model.pretrained)
        frozen += copied if spec.model.pretrained.freeze else []
    for part in task.model.modules():
        if isinstance(part, Momentum):  # a momentum copy starts equal to its online module
            part.reset()
    freeze(task.model, frozen)
    task.frozen = frozen
    return task
