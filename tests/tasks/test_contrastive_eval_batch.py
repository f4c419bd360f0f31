"""In-batch objectives are validated in batches of the training size (issue 19).

NT-Xent's value depends on how many negatives a batch holds: near log(2B - 1) for an untrained
encoder. Validated in the 4096-image evaluation batches, its validation loss measured something
else than the training loss (and cost 16x a training step per image at B = 256).
"""

from __future__ import annotations

import math

from replab import api


def test_contrastive_validation_loss_uses_the_training_batch(tmp_path):
    batch = 8
    run = api.run(
        "a3-mnist-simclr",
        *[
            "data.dataset=digits",
            "model.encoder.hidden=[32]",
            "model.encoder.latent_dim=8",
            "model.projection.hidden=[16]",
            "model.projection.out_dim=8",
            "augment=[{name: affine, translate: 0.1}]",
            f"trainer.batch_size={batch}",
            "trainer.epochs=1",
            "trainer.early_stopping=null",
            "probe.enabled=false",
            "analysis.enabled=false",
        ],
        runs_dir=tmp_path,
        log=lambda _: None,
    )
    assert run is not None
    val_loss = run.metrics["val.loss"]
    # ~160 validation images in one 4096-image batch would score near log(319) = 5.8
    assert val_loss < math.log(2 * batch - 1) + 0.3
