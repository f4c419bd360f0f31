"""Probes: a classifier trained on frozen latents, scored on val and test."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from replab.data import DeviceLoader
from replab.data.stream import Batches
from replab.evaluation.label_efficiency import zscored
from replab.evaluation.metrics import ClassificationMetrics, classification_report
from replab.models import Classifier, Identity
from replab.models.layers import latent_dim_of
from replab.spec import Component, TrainerSpec
from replab.tasks.base import build_head
from replab.tasks.classify import Classify, predicted_labels
from replab.training import Trainer, seed_everything
from replab.training.trainer import progress


@dataclass
class ProbeResult:
    val_accuracy: float
    test_accuracy: float
    train_accuracy: float
    epochs: int
    history: list[dict]
    test_report: ClassificationMetrics
    seconds: float | None = None  # wall time, set by the caller that timed it


@dataclass
class Latents:
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    y_train: torch.Tensor
    y_val: torch.Tensor
    y_test: torch.Tensor

    def standardized(self) -> Latents:
        """z-score every dimension with train statistics: probes then
        need no per-encoder lr tuning."""
        train, val, test = zscored(self.train, self.val, self.test)
        return Latents(
            train,
            val,
            test,
            self.y_train,
            self.y_val,
            self.y_test,
        )


def train_probe(
    latents: Latents,
    head: Component,
    spec: TrainerSpec,
    num_classes: int,
    device: torch.device,
    seed: int,
    classes: list[str] | None = None,
) -> ProbeResult:
    """Fit ``head`` on ``latents.train``, early-stopping on val; report val and test accuracy."""
    seed_everything(seed)
    latents = latents.standardized()
    dim = latents.train.shape[1]
    model = Classifier(Identity(dim), build_head(head, dim, num_classes, where="probe.head"))
    task = Classify(model, Classify.build_objective(Component(name="cross_entropy")))
    loaders = {
        split: DeviceLoader(
            x,
            y,
            spec.batch_size if split == "train" else spec.eval_batch_size,
            shuffle=split == "train",
            seed=seed,
            device=device,
        )
        for split, x, y in (
            ("train", latents.train, latents.y_train),
            ("val", latents.val, latents.y_val),
            ("test", latents.test, latents.y_test),
        )
    }
    return _fit_and_score(
        task, spec, loaders, device, "probe", classes or [str(i) for i in range(num_classes)]
    )


def finetune_probe(
    encoder: nn.Module,
    head: Component,
    spec: TrainerSpec,
    loaders: Mapping[str, Batches],
    num_classes: int,
    device: torch.device,
    seed: int,
    classes: list[str] | None = None,
) -> ProbeResult:
    """Train a copy of ``encoder`` together with a fresh ``head`` on the images
    (the encoder is not frozen)."""
    seed_everything(seed)
    encoder = copy.deepcopy(encoder)
    model = Classifier(
        encoder, build_head(head, latent_dim_of(encoder), num_classes, where="probe.head")
    )
    task = Classify(model, Classify.build_objective(Component(name="cross_entropy")))
    return _fit_and_score(
        task, spec, loaders, device, "fine-tune", classes or [str(i) for i in range(num_classes)]
    )


def _fit_and_score(
    task: Classify,
    spec: TrainerSpec,
    loaders: Mapping[str, Batches],
    device,
    desc: str,
    classes: list[str],
) -> ProbeResult:
    trainer = Trainer(task, spec, loaders["train"], loaders["val"], device, desc=desc)
    # One bar over the epochs (early stopping ends most runs well before spec.epochs): the probe
    # trains hundreds of small steps per epoch, minutes on a busy CPU, and used to do it silently.
    with progress(total=spec.epochs, desc=desc, unit="epoch") as bar:
        trainer.hooks.append(lambda _, record: _show_epoch(bar, record))
        fit = trainer.fit()
    scores = {
        split: trainer.evaluate(loaders[split], split)[f"{split}_accuracy"]
        for split in ("train", "val")
    }
    # One pass over the test set gives the per-class report, whose accuracy is the test accuracy.
    report = classification_report(*predictions(trainer.model, loaders["test"]), classes)
    return ProbeResult(
        scores["val"], report.accuracy, scores["train"], len(fit.history), fit.history, report
    )


def _show_epoch(bar, record: dict) -> None:
    bar.update(1)
    bar.set_postfix_str(f"val accuracy {record.get('val_accuracy', float('nan')):.4f}")


@torch.inference_mode()
def predictions(model: nn.Module, loader: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """(true labels, predicted labels) over ``loader`` in eval mode."""
    model.eval()
    truth, predicted = [], []
    for x, y in loader:
        truth.append(y)
        predicted.append(predicted_labels(model(x)))
    return torch.cat(truth), torch.cat(predicted)
