"""The report's MAE reconstructions show what the encoder was shown: the masked input row has
the hidden patches grey and the visible ones as they are, on the reconstructions' own draw."""

from __future__ import annotations

import torch

from replab.data import Normalizer, load_splits
from replab.recipes import load_spec
from replab.runs.evaluate import EvalContext, masked_inputs
from replab.runs.prepare import initial_task

SMALL_VIT = "model.encoder={name: vit, patch_size: 2, width: 24, depth: 1, heads: 2}"


def test_masked_input_row_hides_the_reconstructions_patches():
    spec = load_spec("a5-mnist-mae", ["data.dataset=digits", SMALL_VIT])
    splits = load_splits("digits", seed=0)
    task = initial_task(spec, splits.train.shape, len(splits.train.classes))
    ctx = EvalContext(spec, splits, Normalizer(), torch.device("cpu"), task, lambda _: None)
    images = splits.test.images[:6]
    shown = masked_inputs(ctx, images)
    original = images.float() / 255
    hidden = shown == 0.5
    # 8x8 digits in 2x2 patches: 16 patches, 12 hidden at the default ratio 0.75
    assert hidden.float().mean().item() >= 0.74
    torch.testing.assert_close(shown[~hidden], original[~hidden])
    # the reconstruction keeps exactly the patches the row shows
    task.model.eval()
    with torch.inference_mode():
        recon = task.model.reconstruct(images.float() / 255)
    torch.testing.assert_close(recon[~hidden], original[~hidden])
    assert masked_inputs(ctx, images).equal(shown)  # one fixed draw
