"""Device-resident batches: the whole split lives on the device and batches are index slices.

No per-image Python and no worker processes: each batch is one gather on a tensor that is
already where the model runs, and uint8 images become floats only a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

from replab.errors import ConfigError


class Normalizer:
    """uint8 pixels -> float in [0, 1], optionally standardised per channel; floats pass through."""

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        if (mean is None) != (std is None):
            raise ValueError("a Normalizer takes both mean and std, or neither")
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, images: torch.Tensor, mode: str | Mapping) -> Normalizer:
        """``unit``, ``standard`` (the statistics of ``images``) or fixed ``{mean, std}``."""
        if mode == "unit" or images.dtype != torch.uint8:
            return cls()
        if isinstance(mode, Mapping):
            channels = images.shape[1]
            return cls(
                _per_channel(mode["mean"], channels, "mean"),
                _per_channel(mode["std"], channels, "std"),
            )
        x = images.float().div_(255)
        dims = [0, 2, 3]
        return cls(x.mean(dims).view(1, -1, 1, 1), x.std(dims).clamp_min(1e-6).view(1, -1, 1, 1))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        x = x.float().div_(255)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] pixel space, for pictures and pixel metrics."""
        if self.mean is None or self.std is None:
            return x
        return x * self.std.to(x.device) + self.mean.to(x.device)


def _per_channel(value: float | list[float], channels: int, what: str) -> torch.Tensor:
    """A scalar broadcast to every channel, or a list with exactly one value per channel."""
    values = list(value) if isinstance(value, list | tuple) else [float(value)] * channels
    if len(values) != channels:
        raise ConfigError(
            f"data.normalize.{what} has "
            f"{len(values)} values but the images have {channels} channel(s)",
            f"give one {what} per channel, or a single number for all",
        )
    if what == "std" and min(values) <= 0:
        raise ConfigError(
            f"data.normalize.std {values} must be > 0", "use positive standard deviations"
        )
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


def check_global_batch(batch_size: int, world_size: int) -> None:
    """Refuse a global batch that ``world_size`` processes cannot take equal slices of."""
    if world_size > 1 and batch_size % world_size:
        raise ConfigError(
            f"batch size {batch_size} does not split into {world_size} equal per-process slices",
            "use a trainer.batch_size divisible by the number of processes "
            f"({world_size}); it is the global batch",
        )


class DeviceLoader:
    """Shuffled mini-batches of ``(x, y)`` tensors that already live on ``device``.

    Sharded (:meth:`shard`, multi-process training), ``batch_size`` stays the GLOBAL batch:
    every rank draws the same shuffled order and yields only its slice of each global batch.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        normalizer: Normalizer | None = None,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> None:
        self.x = x.to(device)
        self.y = y.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.normalizer = normalizer or Normalizer()
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world_size = 0, 1

    def shard(self, rank: int, world_size: int) -> None:
        """Yield rank ``rank``'s slice of each global batch of ``batch_size`` rows.

        Slices are equal: rank r takes rows ``[r * k, (r + 1) * k)`` of a batch of
        ``world_size * k``. A last partial batch is cut to a multiple of ``world_size`` (at most
        ``world_size - 1`` rows of an epoch skipped, other ones each epoch as the order is
        reshuffled).
        """
        check_global_batch(self.batch_size, world_size)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n = len(self.y)
        partial = 0 if self.drop_last or n % self.batch_size < self.world_size else 1
        return n // self.batch_size + partial

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.y.device)
        for b in range(len(self)):
            start, stop = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if self.world_size > 1:
                per = (stop - start) // self.world_size
                start, stop = start + self.rank * per, start + (self.rank + 1) * per
            if self.shuffle:
                index = order[start:stop]
                yield self.normalizer(self.x[index]), self.y[index]
            else:
                yield self.normalizer(self.x[start:stop]), self.y[start:stop]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
