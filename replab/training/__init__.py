"""Training: the trainer, optimizer / parameter-group / schedule registries, early stopping,
DDP, device and seeding helpers."""

from replab.training.device import resolve_device, seed_everything
from replab.training.trainer import FitResult, Trainer, check_trainer_spec, evaluate

__all__ = [
    "FitResult",
    "Trainer",
    "check_trainer_spec",
    "evaluate",
    "resolve_device",
    "seed_everything",
]
