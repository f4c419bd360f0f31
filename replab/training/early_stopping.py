"""Stop when a monitored metric has not improved for ``patience`` epochs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from replab.spec import EarlyStoppingSpec


@dataclass
class EarlyStopping:
    monitor: str
    mode: str = "min"
    patience: int = 3
    min_delta: float = 0.0
    best: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0

    @classmethod
    def from_spec(cls, spec: EarlyStoppingSpec) -> EarlyStopping:
        return cls(spec.monitor, spec.mode, spec.patience, spec.min_delta)

    def improved(self, value: float) -> bool:
        if math.isnan(self.best):
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        """Record ``value``; True when it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
