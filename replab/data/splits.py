"""Deterministic, stratified train/val/test splits from a seed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from replab.data.base import ImageSet


def stratified_split(labels: torch.Tensor, fractions: list[float], seed: int) -> list[torch.Tensor]:
    """Split indices of ``labels`` into parts of the given fractions (the rest goes last).

    Each class is permuted with a generator seeded by ``seed`` and cut at the same
    fractions, so every part keeps the class balance and the split depends on the seed alone.
    """
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for cls in torch.unique(labels):
        index = torch.nonzero(labels == cls).flatten()
        index = index[torch.randperm(len(index), generator=generator)]
        cuts = [round(f * len(index)) for f in fractions]
        start = 0
        for i, size in enumerate(cuts):
            parts[i].append(index[start : start + size])
            start += size
        parts[-1].append(index[start:])
    # Re-shuffle across classes so a part is not sorted by class.
    out = []
    for chunks in parts:
        joined = torch.cat(chunks)
        out.append(joined[torch.randperm(len(joined), generator=generator)])
    return out


def stratified_head(split: ImageSet, n: int, seed: int) -> ImageSet:
    """A class-balanced random ``n`` of ``split`` (all of it when it is no larger)."""
    if n >= len(split):
        return split
    part = split.subset(stratified_split(split.labels, [n / len(split)], seed)[0])
    part.source += f", limited to {len(part):,} images"
    return part
