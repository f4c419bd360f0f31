"""Pretrained weights and frozen parts: study B4's four cases rest on these."""

from __future__ import annotations

import pytest
import torch

from replab.errors import CheckpointError, ConfigError
from replab.io import save_checkpoint
from replab.spec import validate_spec
from replab.tasks import build_task

BASE = {
    "task": "classify",
    "model": {
        "encoder": {"name": "mlp", "hidden": [16], "latent_dim": 8},
        "head": {"name": "linear_head"},
    },
    "objective": {"name": "cross_entropy"},
}


def spec(**model):
    return validate_spec({**BASE, "model": {**BASE["model"], **model}})


def autoencoder_checkpoint(tmp_path):
    ae = build_task(
        validate_spec(
            {
                "model": {
                    "encoder": BASE["model"]["encoder"],
                    "decoder": {"name": "mlp_decoder", "hidden": [16]},
                },
                "objective": {"name": "mse"},
            }
        ),
        (1, 8, 8),
        10,
    )
    save_checkpoint(tmp_path / "best.pt", {"model": ae.model.state_dict(), "epoch": 1})
    return ae


@pytest.mark.parametrize("init", ["default", "kaiming"])
def test_pretrained_encoder_is_copied_from_a_run_folder(tmp_path, init):
    ae = autoencoder_checkpoint(tmp_path)
    task = build_task(spec(pretrained={"path": str(tmp_path)}, init=init), (1, 8, 8), 10)
    for (name, a), b in zip(
        ae.model.encoder.state_dict().items(), task.model.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name  # model.init fills only what the checkpoint does not cover
    if init == "kaiming":
        assert not task.model.head.net.bias.any()


def test_frozen_encoder_does_not_move_and_stays_in_eval_mode():
    task = build_task(spec(freeze=["encoder"]), (1, 8, 8), 10)
    before = [p.clone() for p in task.model.encoder.parameters()]
    optimizer = torch.optim.SGD([p for p in task.model.parameters() if p.requires_grad], lr=1.0)
    task.train_mode()
    assert not task.model.encoder.training and task.model.head.training
    task.step(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))["loss"].backward()
    optimizer.step()
    assert all(
        torch.equal(a, b) for a, b in zip(before, task.model.encoder.parameters(), strict=True)
    )


def test_unknown_part_and_checkpoint_without_it_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no part 'decoder'"):
        build_task(spec(freeze=["decoder"]), (1, 8, 8), 10)
    save_checkpoint(tmp_path / "best.pt", {"model": {"head.net.weight": torch.zeros(2, 2)}})
    with pytest.raises(CheckpointError, match="no 'encoder' weights"):
        build_task(spec(pretrained={"path": str(tmp_path / "best.pt")}), (1, 8, 8), 10)


def test_pretrained_encoder_of_another_shape_names_the_checkpoint(tmp_path):
    autoencoder_checkpoint(tmp_path)
    other = {"name": "mlp", "hidden": [32], "latent_dim": 8}
    with pytest.raises(CheckpointError, match="does not fit"):
        build_task(
            validate_spec(
                {
                    **BASE,
                    "model": {
                        **BASE["model"],
                        "encoder": other,
                        "pretrained": {"path": str(tmp_path)},
                    },
                }
            ),
            (1, 8, 8),
            10,
        )


def cnn_spec(**pretrained):
    return validate_spec(
        {
            "task": "classify",
            "objective": {"name": "cross_entropy"},
            "model": {
                "encoder": {"name": "cnn", "channels": [4, 8, 8], "latent_dim": 16},
                "head": {"name": "linear_head"},
                **({"pretrained": pretrained} if pretrained else {}),
            },
        }
    )


def pretext_checkpoint(tmp_path):
    torch.manual_seed(1)
    donor = build_task(cnn_spec(), (3, 16, 16), 2)
    save_checkpoint(tmp_path / "best.pt", {"model": donor.model.state_dict()})
    return donor


def test_first_k_blocks_are_copied_and_the_rest_start_afresh(tmp_path):
    donor = pretext_checkpoint(tmp_path)
    torch.manual_seed(2)
    task = build_task(cnn_spec(path=str(tmp_path), blocks=2), (3, 16, 16), 10)
    same = lambda a, b: all(  # noqa: E731
        torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True)
    )
    enc, src = task.model.encoder, donor.model.encoder
    assert same(enc.blocks[0], src.blocks[0]) and same(enc.blocks[1], src.blocks[1])
    assert not same(enc.blocks[2], src.blocks[2]) and not same(enc.fc, src.fc)
    assert task.frozen == [] and all(p.requires_grad for p in task.model.parameters())


def test_frozen_blocks_stay_fixed_and_in_eval_mode_while_the_rest_trains(tmp_path):
    pretext_checkpoint(tmp_path)
    task = build_task(cnn_spec(path=str(tmp_path), blocks=1, freeze=True), (3, 16, 16), 10)
    assert task.frozen == ["encoder.blocks.0"]
    task.train_mode()
    assert not task.model.encoder.blocks[0].training and task.model.encoder.blocks[1].training
    before = [p.clone() for p in task.model.encoder.parameters()]
    optimizer = torch.optim.SGD([p for p in task.model.parameters() if p.requires_grad], lr=0.5)
    task.step(torch.rand(8, 3, 16, 16), torch.arange(8))["loss"].backward()
    optimizer.step()
    moved = [
        not torch.equal(a, b) for a, b in zip(before, task.model.encoder.parameters(), strict=True)
    ]
    assert moved[:2] == [False, False] and all(moved[2:])  # block 0's conv weight and bias only


def test_blocks_need_a_block_structured_encoder_and_enough_blocks(tmp_path):
    pretext_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="has 3 blocks"):
        build_task(cnn_spec(path=str(tmp_path), blocks=4), (3, 16, 16), 10)
    autoencoder_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="not made of blocks"):
        build_task(spec(pretrained={"path": str(tmp_path), "blocks": 1}), (1, 8, 8), 10)
