"""Tasks: how a batch becomes a loss. ``build_task`` turns a spec into a ready task."""

from replab.registry import discover
from replab.tasks.base import Task
from replab.tasks.build import build_task
from replab.tasks.registry import TASKS

discover(__name__)  # every module registers its task: a new task is one new file

__all__ = ["TASKS", "Task", "build_task"]
