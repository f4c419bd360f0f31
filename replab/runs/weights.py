"""A finished run's trained model, rebuilt from its config and loaded from its checkpoint.

The weights are read with ``weights_only=True`` (tensors and plain containers, never code),
and they are the ones the run evaluated on test: ``best.pt`` when the run restored its best
epoch, the model of ``last.pt`` when it kept its last (``trainer.keep: last``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from replab.data import DATASETS
from replab.errors import ReplabError
from replab.io import load_checkpoint, load_state_into
from replab.runs import rundir
from replab.spec import ExperimentSpec
from replab.tasks import Task, build_task


def load_run_task(
    run_dir: Path, device: str | torch.device = "cpu", trust_code: bool = False
) -> tuple[Task, ExperimentSpec]:
    """The run's task with its evaluated weights, in eval mode. A config naming code by
    import path is refused unless ``trust_code`` (``rundir.open_existing``)."""
    run_dir = Path(run_dir)
    spec = rundir.open_existing(run_dir, trust_code)
    summary = rundir.read_summary(run_dir)
    shape, classes = _shape_and_classes(spec, summary)
    # The pretrained weights it started from are in its own checkpoint now (and their run
    # folder may be gone), so the model is rebuilt without them.
    plain = spec.model_copy(update={"model": spec.model.model_copy(update={"pretrained": None})})
    with torch.random.fork_rng():
        task = build_task(plain, shape, classes)
    path = _evaluated_checkpoint(run_dir, summary)
    state = load_checkpoint(path, map_location=device)
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise ReplabError(
            f"checkpoint {str(path)!r} holds no model weights",
            "pass a run folder written by `replab run` (its best.pt or last.pt)",
        )
    load_state_into(task.model, weights, path)
    task.model.to(device).eval()
    return task, spec


def _evaluated_checkpoint(run_dir: Path, summary: dict) -> Path:
    restored_best = summary.get("evaluated_epoch", summary.get("best_epoch")) == summary.get(
        "best_epoch"
    )
    best, last = run_dir / rundir.BEST, run_dir / rundir.LAST
    if restored_best and best.is_file():
        return best
    if last.is_file():
        return last
    raise ReplabError(
        f"{str(run_dir)!r} has no checkpoint ({rundir.BEST} or {rundir.LAST})",
        "pass a run folder written by `replab run` (an analyze run holds no trained weights)",
    )


def _shape_and_classes(spec: ExperimentSpec, summary: dict) -> tuple[tuple[int, ...], int]:
    """From the summary (runs since 0.1.0 record them), else from the dataset's declaration."""
    shape, classes = summary.get("input_shape"), summary.get("num_classes")
    if isinstance(shape, list) and isinstance(classes, int):
        return tuple(int(s) for s in shape), classes
    source = DATASETS.get(spec.data.dataset, where="data.dataset")()
    count = len(spec.data.classes) if spec.data.classes else len(source.classes)
    return tuple(source.shape), count
