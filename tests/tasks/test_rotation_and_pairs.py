"""The rotation pretext (C2) and pair-contrastive (C4) tasks."""

from __future__ import annotations

import pytest
import torch

from replab.errors import ConfigError
from replab.objectives.pair_margin import permuted_pairs
from replab.spec import validate_spec
from replab.tasks import build_task
from replab.tasks.base import EVAL_SEED
from replab.tasks.rotation import rotate

CNN = {"name": "cnn", "channels": [4, 8], "latent_dim": 8}


def rotation_task(angles=(0, 90), shape=(3, 8, 8), **extra):
    raw = {
        "task": {"name": "rotation", "angles": list(angles), **extra},
        "objective": {"name": "cross_entropy"},
        "model": {"encoder": CNN, "head": {"name": "linear_head"}},
    }
    return build_task(validate_spec(raw), shape, 10)


def test_rotate_turns_each_image_by_its_own_angle():
    x = torch.rand(12, 3, 5, 5)
    which = torch.arange(12) % 4
    angles = [0, 90, 180, 270]
    expected = torch.stack(
        [
            torch.rot90(img, angles[w] // 90, dims=(1, 2))
            for img, w in zip(x, which.tolist(), strict=True)
        ]
    )
    assert torch.equal(rotate(x, which, angles), expected)


def test_head_has_one_output_per_angle_and_labels_are_the_rotations():
    task = rotation_task([0, 90, 180, 270])
    assert task.model.head.net.out_features == 4
    torch.manual_seed(0)
    # class labels are ignored
    out = task.step(torch.rand(64, 3, 8, 8), torch.zeros(64, dtype=torch.long))
    assert out["loss"].item() == pytest.approx(torch.log(torch.tensor(4.0)).item(), abs=0.3)


def test_evaluation_replays_the_same_rotations_every_pass():
    task = rotation_task()
    x, y = torch.rand(32, 3, 8, 8), torch.zeros(32, dtype=torch.long)
    task.model.eval()
    with torch.no_grad():
        first = task.step(x, y)
        task.model.train()
        task.step(x, y)  # a training step between two evaluations
        task.model.eval()
        second = task.step(x, y)
    assert torch.equal(first["loss"], second["loss"]) and EVAL_SEED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"angles": [0, 45]}, "distinct angles"),
        ({"angles": [90]}, "distinct angles"),
        ({"angles": [0, 90], "shape": (3, 8, 6)}, "changes their shape"),
        ({"angles": [0, 90], "flips": True}, "has no option 'flips'"),
    ],
)
def test_bad_rotation_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        rotation_task(**kwargs)


def pairs_task(**model):
    raw = {
        "task": "pairs",
        "objective": {"name": "pair_margin", "margin": 2.0},
        "model": {"encoder": {**CNN, "latent_dim": 2}, **model},
    }
    return build_task(validate_spec(raw), (3, 8, 8), 10)


def test_pairs_step_is_the_margin_loss_on_the_batch_against_its_permutation():
    task = pairs_task()
    task.model.eval()
    x, y = torch.rand(16, 3, 8, 8), torch.randint(3, (16,))
    with torch.no_grad():
        got = task.step(x, y)
        z = task.model(x)
    za, zb, same = permuted_pairs(z, y, torch.Generator().manual_seed(EVAL_SEED))
    assert got["loss"].item() == pytest.approx(task.objective(za, zb, same).item(), rel=1e-6)
    assert 0.0 <= got["pair_accuracy"].item() <= 1.0


def test_pairs_task_takes_no_head():
    with pytest.raises(ConfigError, match="takes no model.head"):
        pairs_task(head={"name": "linear_head"})
