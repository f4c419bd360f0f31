"""Training: the trainer, optimizers, early stopping, device and seeding helpers."""

from replab.training.device import resolve_device, seed_everything
from replab.training.trainer import FitResult, Trainer

__all__ = ["FitResult", "Trainer", "resolve_device", "seed_everything"]
