"""What a run starts from: its data as training sees it, the labels that data must carry, the
task's initial weights, and the loaders over the splits.

Public so the evaluation of an encoder trained elsewhere (``replab analyze``), the studies
(study D fits its LinearSVC on the very same data) and the benchmarks build exactly what a run
builds.
"""

from __future__ import annotations

import torch

from replab.data import DeviceLoader, ImageSet, Normalizer, Splits, load_splits
from replab.data.stream import Batches, StreamLoader, StreamSet
from replab.errors import ConfigError
from replab.spec import ExperimentSpec
from replab.tasks import TASKS, Task, build_task


def load_data(spec: ExperimentSpec) -> tuple[Splits, Normalizer]:
    """The run's splits and pixel normalizer, exactly as training sees them."""
    d = spec.data
    splits = load_splits(
        d.dataset,
        root=d.root,
        download=d.download,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        limit_train=d.limit_train,
        limit_eval=d.limit_eval,
        seed=spec.seed,
        classes=d.classes,
        refit=d.refit,
        train_split=d.train_split,
        image_size=d.image_size,
        channels=d.channels,
        skip_corrupt=d.skip_corrupt,
        streaming={
            "resident": d.resident,
            "budget": d.resident_budget,
            "verify": d.verify_shards,
            "workers": d.workers,
        },
    )
    mode = d.normalize if isinstance(d.normalize, str) else d.normalize.model_dump()
    return splits, Normalizer.fit(held(splits.fit).images, mode)


# how many images of a streamed split stand in for it where pixels must be in memory: the
# 'standard' normalisation's statistics and the monitors' probe rows
SAMPLE = 10_000


def held(split: ImageSet | StreamSet, n: int = SAMPLE) -> ImageSet:
    """``split`` itself when held; for a streamed one its first ``n`` images, a random sample
    (the pack shuffled the split)."""
    return split if isinstance(split, ImageSet) else split.head(n).decoded()


def label_free_tasks() -> list[str]:
    """The registered tasks that learn from the images alone (each says so: ``needs_labels``)."""
    return [name for name in TASKS.names() if not TASKS.get(name).needs_labels]


def check_labels(spec: ExperimentSpec, splits: Splits) -> None:
    """Refuse, before any training, what an unlabelled dataset cannot give."""
    fit = splits.fit
    if not fit.labelled and TASKS.get(spec.task.name, where="task").needs_labels:
        raise ConfigError(
            f"task {spec.task.name} trains on labels, but the images it would train on have "
            f"none ({fit.source})",
            f"use a task that needs none ({', '.join(label_free_tasks())}), or labelled data "
            "(class subfolders for image_folder, y for npz, no data.train_split=unlabeled)",
        )
    if splits.train.labelled and splits.test.labelled:
        return
    source = f"data.dataset={spec.data.dataset} has no labels here ({splits.train.source})"
    wanted = [
        k for k, on in (("probe", spec.probe.enabled), ("analysis", spec.analysis.enabled)) if on
    ]
    if wanted:
        raise ConfigError(
            f"the {' and the '.join(wanted)} need labels, but {source}",
            " ".join(f"{k}.enabled=false" for k in wanted)
            + " to train only, or give a labelled split for them: class subfolders "
            "(image_folder), y (npz), or data.train_split=unlabeled on a dataset with labelled "
            "train/test (stl10)",
        )


def initial_task(spec: ExperimentSpec, shape: tuple[int, ...], num_classes: int) -> Task:
    """The task with the exact weights its run starts from: nothing but the seed decides them."""
    torch.manual_seed(spec.seed)
    return build_task(spec, shape, num_classes)


def loaders(
    spec: ExperimentSpec,
    splits: Splits,
    normalizer: Normalizer,
    device: torch.device,
    batch_size: int,
    eval_batch_size: int,
    labelled: bool = False,
) -> tuple[Batches, Batches, Batches]:
    """train/val/test loaders; train is the model's own training split unless ``labelled``
    (fine-tuning with a head trains on the labelled train split)."""

    def make(split: ImageSet | StreamSet, size: int, shuffle: bool) -> Batches:
        if isinstance(split, StreamSet):
            return StreamLoader(
                split,
                size,
                shuffle=shuffle,
                seed=spec.seed,
                normalizer=normalizer,
                device=device,
                workers=spec.data.workers,
                buffer=spec.data.shuffle_buffer,
                flat_memory=spec.data.flat_memory,
            )
        return DeviceLoader(
            split.images,
            split.labels,
            size,
            shuffle=shuffle,
            seed=spec.seed,
            normalizer=normalizer,
            device=device,
        )

    return (
        make(splits.train if labelled else splits.fit, batch_size, True),
        make(splits.val, eval_batch_size, False),
        make(splits.test, eval_batch_size, False),
    )
