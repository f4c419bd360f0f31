"""One test image's reconstruction after every epoch (report 003, figure 7: training progress).

Kept in the run folder (``figures/reconstruction-trail.npz``, plain arrays, no pickle) and
rewritten atomically each epoch, so a resumed run still shows the epochs before the break.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from replab.data import Normalizer
from replab.evaluation.embed import reconstruct
from replab.io import atomic_write_bytes

MAX_COLUMNS = 10


class ReconstructionTrail:
    def __init__(
        self, path: Path, image: torch.Tensor, normalizer: Normalizer, device: torch.device
    ) -> None:
        self.path, self.image, self.normalizer, self.device = (
            Path(path),
            image[:1],
            normalizer,
            device,
        )
        self.epochs: list[int] = []
        self.images: list[np.ndarray] = []
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as saved:
                self.epochs, self.images = saved["epochs"].tolist(), list(saved["images"])

    def __call__(self, trainer, record: dict) -> None:
        """A trainer hook: reconstruct the image with the weights of the epoch just finished."""
        recon = (
            reconstruct(trainer.task.model, self.image, self.normalizer, self.device)[0]
            .cpu()
            .numpy()
        )
        # a resumed run redoes later epochs
        keep = [i for i, e in enumerate(self.epochs) if e < record["epoch"]]
        self.epochs = [self.epochs[i] for i in keep] + [record["epoch"]]
        self.images = [self.images[i] for i in keep] + [recon]
        buffer = io.BytesIO()
        np.savez(buffer, epochs=np.asarray(self.epochs), images=np.stack(self.images))
        atomic_write_bytes(self.path, buffer.getvalue())

    def columns(self) -> tuple[list[int], torch.Tensor]:
        """At most ``MAX_COLUMNS`` epochs, evenly spread and always with the first and last."""
        if not self.epochs:
            return [], torch.empty(0)
        picks = sorted(
            set(
                np.linspace(0, len(self.epochs) - 1, min(MAX_COLUMNS, len(self.epochs)))
                .round()
                .astype(int)
                .tolist()
            )
        )
        return [self.epochs[i] for i in picks], torch.from_numpy(
            np.stack([self.images[i] for i in picks])
        )
