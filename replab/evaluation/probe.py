"""Probes: a classifier trained on frozen latents, scored on val and test."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from replab.data import DeviceLoader
from replab.models import Classifier, Identity
from replab.spec import Component, TrainerSpec
from replab.tasks.base import build_head
from replab.tasks.classify import Classify
from replab.training import Trainer, seed_everything


@dataclass
class ProbeResult:
    val_accuracy: float
    test_accuracy: float
    train_accuracy: float
    epochs: int
    history: list[dict]


@dataclass
class Latents:
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    y_train: torch.Tensor
    y_val: torch.Tensor
    y_test: torch.Tensor

    def standardized(self) -> Latents:
        """z-score every dimension with train statistics: probes then need no per-encoder lr tuning."""
        mean, std = self.train.mean(0), self.train.std(0).clamp_min(1e-6)
        scale = lambda z: (z - mean) / std  # noqa: E731
        return Latents(scale(self.train), scale(self.val), scale(self.test), self.y_train, self.y_val, self.y_test)


def train_probe(latents: Latents, head: Component, spec: TrainerSpec, num_classes: int, device: torch.device, seed: int) -> ProbeResult:
    """Fit ``head`` on ``latents.train``, early-stopping on val; report val and test accuracy."""
    seed_everything(seed)
    latents = latents.standardized()
    dim = latents.train.shape[1]
    model = Classifier(Identity(dim), build_head(head, dim, num_classes, where="probe.head"))
    task = Classify(model, Classify.build_objective(Component(name="cross_entropy")))
    loaders = {
        split: DeviceLoader(x, y, spec.batch_size if split == "train" else spec.eval_batch_size, shuffle=split == "train", seed=seed, device=device)
        for split, x, y in (("train", latents.train, latents.y_train), ("val", latents.val, latents.y_val), ("test", latents.test, latents.y_test))
    }
    trainer = Trainer(task, spec, loaders["train"], loaders["val"], device, desc="probe")
    fit = trainer.fit()
    scores = {split: trainer.evaluate(loaders[split], split)[f"{split}_accuracy"] for split in ("train", "val", "test")}
    return ProbeResult(scores["val"], scores["test"], scores["train"], len(fit.history), fit.history)
