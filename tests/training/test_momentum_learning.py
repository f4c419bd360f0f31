"""Learning floors for BYOL and MoCo v2: the A3 MNIST recipes, 8 epochs on 4000 images.

A random 784-256-128 MLP already reaches a kNN accuracy of 0.91 on MNIST, and on this budget
none of the SSL methods moves it much (A3's SimCLR: 0.91 after 12 epochs). So the kNN floor
guards against collapse (a collapsed encoder votes one class: about 0.1), and learning is
shown by the views' instance discrimination on validation images: the share of views whose
nearest other view is their own partner must grow well beyond its value at initialisation.
"""

from __future__ import annotations

import pytest
import torch

from replab.data import DeviceLoader
from replab.evaluation.embed import embed
from replab.evaluation.separability import knn_accuracy
from replab.recipes import load_spec
from replab.runs.prepare import load_data
from replab.tasks import build_task
from replab.training import Trainer, seed_everything

CPU = torch.device("cpu")
QUICK = ["data.limit_train=4000", "data.limit_eval=2000", "trainer.batch_size=256"]


@pytest.mark.data
@pytest.mark.parametrize("recipe", ["a3-mnist-byol", "a3-mnist-moco"])
def test_eight_epochs_learn_without_collapse(data_dir, recipe):
    spec = load_spec(recipe, [*QUICK, "trainer.epochs=8", f"data.root={data_dir}"])
    seed_everything(spec.seed)
    splits, normalizer = load_data(spec)
    task = build_task(spec, splits.train.shape, len(splits.train.classes))
    make = lambda s, shuffle: DeviceLoader(  # noqa: E731
        s.images, s.labels, 256, shuffle=shuffle, seed=0, normalizer=normalizer
    )
    trainer = Trainer(
        task,
        spec.trainer.model_copy(update={"progress": False}),
        make(splits.fit, True),
        make(splits.val, False),
        CPU,
    )
    initial = trainer.evaluate(trainer.val, "val")["val_pair_accuracy"]
    final = trainer.fit().history[-1]["val_pair_accuracy"]
    train_z, test_z = (
        embed(task.encoder, s.images, normalizer, CPU) for s in (splits.train, splits.test)
    )
    knn = knn_accuracy(train_z, splits.train.labels, test_z, splits.test.labels)
    print(f"{recipe}: pair accuracy {initial:.3f} -> {final:.3f}, kNN {knn:.4f}")
    # measured (seed 0, 2026-12-01): pair accuracy BYOL 0.048 -> 0.188, MoCo 0.056 -> 0.191;
    # kNN BYOL 0.924, MoCo 0.911
    assert knn >= 0.85
    assert final >= 2 * initial
