"""The per-epoch reconstruction trail survives a resume and keeps its epochs in order."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from replab.data import Normalizer
from replab.evaluation.trail import MAX_COLUMNS, ReconstructionTrail


def trainer_with(scale: float):
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(4, 4), torch.nn.Unflatten(1, (1, 2, 2))
    )
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(4) * scale)
        model[1].bias.zero_()
    return SimpleNamespace(task=SimpleNamespace(model=model))


def test_trail_records_each_epoch_and_a_resumed_run_keeps_the_earlier_ones(tmp_path):
    image = torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)
    path = tmp_path / "trail.npz"
    trail = ReconstructionTrail(path, image, Normalizer(), torch.device("cpu"))
    for epoch, scale in ((1, 0.1), (2, 0.2), (3, 0.3)):
        trail(trainer_with(scale), {"epoch": epoch})
    # a run killed after epoch 3
    resumed = ReconstructionTrail(path, image, Normalizer(), torch.device("cpu"))
    assert resumed.epochs == [1, 2, 3]
    # epoch 3 redone after resuming from epoch 2's checkpoint
    resumed(trainer_with(0.25), {"epoch": 3})
    epochs, images = resumed.columns()
    assert epochs == [1, 2, 3] and torch.allclose(
        images[:, 0, 0, 0], torch.tensor([0.1, 0.2, 0.25])
    )


def test_long_trails_show_at_most_ten_evenly_spread_epochs_first_and_last_included(tmp_path):
    trail = ReconstructionTrail(
        tmp_path / "t.npz",
        torch.zeros(1, 1, 2, 2, dtype=torch.uint8),
        Normalizer(),
        torch.device("cpu"),
    )
    for epoch in range(1, 43):
        trail(trainer_with(0.5), {"epoch": epoch})
    epochs, images = trail.columns()
    assert len(epochs) == MAX_COLUMNS == len(images) and epochs[0] == 1 and epochs[-1] == 42
