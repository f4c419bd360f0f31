"""Watching the latent space while the encoder trains (solo-learn's and lightly's monitors).

A self-supervised loss says little about the latents: it can fall while they collapse, and
its validation value picks checkpoints by how well the pretext is solved. Every ``every``
epochs the current encoder embeds a fixed, seeded, stratified sample of the train split (the
memory of a cosine kNN) and of the val split (its queries), and the epoch's record gains:

* ``val_knn``: the kNN accuracy of the val sample (k = ``knn_k``);
* ``val_rank``: the effective rank (RankMe) of the val sample's latents; under
  ``COLLAPSED`` the latents lie on about one line, and the log says so once;
* ``val_linear`` (``linear: true``): a logistic probe refitted on the train sample's
  detached latents and scored on the val sample.

The encoder's weights and the run's random stream are untouched (eval mode, inference mode,
the sample drawn with its own generator), so a run with monitors trains exactly as one
without. Any of the three can be the early-stopping and best-checkpoint metric.
"""

from __future__ import annotations

import time

import torch

from replab.data import ImageSet, Normalizer
from replab.evaluation.embed import embed
from replab.evaluation.label_efficiency import logistic_accuracy, zscored
from replab.evaluation.latent import stratified_sample
from replab.evaluation.rank import effective_rank
from replab.evaluation.separability import knn_accuracy
from replab.io import Log, warn
from replab.spec import MonitorSpec

COLLAPSED = 2.0  # an effective rank under 2: about one line of latents (study G's floor)
SALT = 0x30A1  # the monitor's samples differ from the analysis' samples of the same seed


class Monitor:
    """The trainer's measure: ``monitor(trainer, epoch)`` gives the epoch's monitor figures
    (an empty dict between measurements)."""

    def __init__(
        self,
        spec: MonitorSpec,
        train: ImageSet,
        val: ImageSet,
        normalizer: Normalizer,
        device: torch.device,
        seed: int,
        log: Log,
        batch_size: int = 4096,
    ) -> None:
        self.spec, self.normalizer, self.device, self.log = spec, normalizer, device, log
        self.batch_size = batch_size
        pick = {
            name: torch.from_numpy(stratified_sample(s.labels, size, seed + SALT))
            for name, s, size in (("train", train, spec.train_size), ("val", val, spec.val_size))
        }
        self.x_train, self.y_train = train.images[pick["train"]], train.labels[pick["train"]]
        self.x_val, self.y_val = val.images[pick["val"]], val.labels[pick["val"]]
        self.num_classes = len(train.classes)
        self.collapsed_at: int | None = None
        self.seconds = 0.0  # time spent measuring, over the run

    def __call__(self, trainer, epoch: int) -> dict[str, float]:
        if epoch % self.spec.every and epoch != trainer.spec.epochs:
            return {}
        start = time.perf_counter()
        out = self.measure(trainer.task.encoder)
        self.seconds += time.perf_counter() - start
        if out["val_rank"] < COLLAPSED and self.collapsed_at is None:
            self.collapsed_at = epoch
            message = (
                f"collapse: at epoch {epoch} the val latents' effective rank is "
                f"{out['val_rank']:.2f} (under {COLLAPSED:g}: they lie on about one line); "
                "a falling loss does not mean a useful space"
            )
            self.log(message)
            warn(message)  # a ReplabWarning, kept in the run's summary.json
        return out

    def measure(self, encoder: torch.nn.Module) -> dict[str, float]:
        """The monitor figures of ``encoder`` now."""
        z_train = self._embed(encoder, self.x_train)
        z_val = self._embed(encoder, self.x_val)
        out = {
            "val_knn": knn_accuracy(
                z_train,
                self.y_train,
                z_val,
                self.y_val,
                min(self.spec.knn_k, len(z_train)),
                "cosine",
            ),
            "val_rank": effective_rank(z_val),
        }
        if self.spec.linear:
            scaled_train, scaled_val = zscored(z_train, z_val)
            out["val_linear"] = logistic_accuracy(
                scaled_train,
                self.y_train.to(z_train.device).long(),
                scaled_val,
                self.y_val.to(z_train.device).long(),
                self.num_classes,
            )
        return out

    def _embed(self, encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return embed(encoder, images, self.normalizer, self.device, self.batch_size)
