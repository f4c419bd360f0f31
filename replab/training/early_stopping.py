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
        """Restore from ``state_dict()``; anything but these fields with these types is refused,
        so a checkpoint cannot set other attributes."""
        check_state(state)
        for key, value in state.items():
            setattr(self, key, value)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "monitor": str,
    "mode": str,
    "patience": int,
    "min_delta": (int, float),
    "best": (int, float),
    "best_epoch": int,
    "bad_epochs": int,
}


def check_state(state: object) -> None:
    """Raise TypeError/ValueError unless ``state`` is an EarlyStopping state dict."""
    if not isinstance(state, dict):
        raise TypeError(f"the early-stopping state is a {type(state).__name__}, not a dict")
    unknown = sorted(map(str, set(state) - set(_TYPES)))
    if unknown:
        raise ValueError(f"the early-stopping state has unknown keys {unknown[:5]}")
    for key, value in state.items():
        if isinstance(value, bool) or not isinstance(value, _TYPES[key]):
            raise TypeError(f"early-stopping {key} is a {type(value).__name__}")
