"""Every registered task, dataset and objective can be named in a recipe and built from its
defaults, and the lists a run or study needs are derived from the registries, not kept by hand.

A new task, dataset or objective is one file plus its test: this test is what proves the rest
of replab picks it up with no other change.
"""

from __future__ import annotations

import itertools

import pytest

from replab.data import DATASETS
from replab.objectives import OBJECTIVES
from replab.recipes import load_spec
from replab.runs.prepare import label_free_tasks
from replab.tasks import TASKS, build_task

PARTS = {
    "decoder": {"name": "mlp_decoder", "hidden": [16]},
    "head": {"name": "linear_head"},
    "projection": {"name": "projection_head"},
    "predictor": {"name": "projection_head"},
}
# two views of one image must differ: the tasks that compare views refuse no augment list
AUGMENT = [{"name": "horizontal_flip"}]


def recipe(task: str, objective: str, parts: tuple[str, ...]) -> dict:
    model = {"encoder": {"name": "mlp", "hidden": [16], "latent_dim": 8}}
    model.update({p: PARTS[p] for p in parts})
    return {
        "name": f"registry-{task}",
        "task": task,
        "data": {"dataset": "digits"},
        "model": model,
        "objective": {"name": objective},
        "augment": AUGMENT,
    }


def fitting_objectives(task: str) -> list[str]:
    target = TASKS.get(task).objective_target
    return [n for n in OBJECTIVES.names() if OBJECTIVES.get(n).target == target]


def build_some_way(task: str):
    """The task built from a recipe naming it, with default components: the first set of model
    parts it accepts (tasks refuse parts they do not use, so each set is tried)."""
    objective = fitting_objectives(task)[0]
    errors = []
    for n in range(len(PARTS) + 1):
        for parts in itertools.combinations(PARTS, n):
            spec = load_spec(None, [], base=recipe(task, objective, parts))
            try:
                return build_task(spec, (1, 8, 8), 10)
            except Exception as err:  # noqa: BLE001 - the next set of parts may fit
                errors.append(f"{parts}: {err}")
    raise AssertionError(f"task {task!r} builds with no set of model parts:\n" + "\n".join(errors))


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_is_built_from_a_recipe_naming_it(name):
    assert fitting_objectives(name), f"no registered objective fits task {name!r}"
    task = build_some_way(name)
    assert isinstance(task, TASKS.get(name))
    assert task.encoder is not None
    assert isinstance(TASKS.get(name).needs_labels, bool)
    assert isinstance(TASKS.get(name).classifies, bool)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_is_built_from_its_defaults(name):
    cls = OBJECTIVES.get(name)
    assert cls.target, f"objective {name!r} says no target (the task kind it fits)"
    fits = [t for t in TASKS.names() if TASKS.get(t).objective_target == cls.target]
    assert fits, f"no registered task takes objective {name!r} (target {cls.target!r})"
    objective = OBJECTIVES.build(name, {}, where="objective")
    assert isinstance(objective, cls)
    spec = load_spec(None, [], base=recipe(fits[0], name, ()))
    assert spec.objective.name == name


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_is_named_in_a_recipe_and_built_from_its_defaults(name):
    source = DATASETS.get(name)()
    assert source.title
    # a user's own folder or file says its shape when read; every other source declares it
    assert source.user_path or len(source.shape) == 3
    spec = load_spec(None, [f"data.dataset={name}"], base=recipe("autoencode", "l1", ("decoder",)))
    assert DATASETS.get(spec.data.dataset) is type(source)


def test_label_free_tasks_come_from_the_tasks_themselves():
    free = set(label_free_tasks())
    assert {"autoencode", "vae", "contrastive", "momentum_contrastive", "rotation"} <= free
    assert {"classify", "pairs", "triplet"}.isdisjoint(free)
    assert [n for n in TASKS.names() if TASKS.get(n).classifies] == ["classify"]
