"""Bringing images to the size and channels a recipe asks for, and the decoded-data cache.

Both work on whole uint8 (N, C, H, W) tensors a chunk at a time: once, when a split is
loaded, never per batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from replab.errors import ConfigError

CHUNK = 4096  # images resized at a time: bounds the float copy resizing needs
# ITU-R BT.601 luma, what PIL's convert("L") and torchvision's rgb_to_grayscale use
LUMA = (0.299, 0.587, 0.114)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> colour by repeating the channel, colour -> grey by luma; alpha dropped."""
    have = images.shape[1]
    if have in (2, 4):  # grey + alpha, colour + alpha: the alpha channel is not part of the image
        images, have = images[:, : have - 1], have - 1
    if have == channels:
        return images
    if channels == 3 and have == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and have == 3:
        weights = torch.tensor(LUMA).view(1, 3, 1, 1)
        out = torch.empty((len(images), 1, *images.shape[2:]), dtype=torch.uint8)
        for start in range(0, len(images), CHUNK):
            part = images[start : start + CHUNK].float()
            out[start : start + CHUNK] = (
                (part * weights).sum(1, keepdim=True).round_().clamp_(0, 255)
            )
        return out
    raise ConfigError(
        f"data.channels={channels} cannot be made from images with {have} channels",
        "use data.channels=1 (grey) or data.channels=3 (colour)",
    )


def to_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize to ``size`` x ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(images.shape[2:]) == (size, size):
        return images
    from torchvision.transforms.v2 import functional as tvf

    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(images), CHUNK):
        out[start : start + CHUNK] = tvf.resize(
            images[start : start + CHUNK], [size, size], antialias=True
        )
    return out


def conform(images: torch.Tensor, size: int | None, channels: int | None) -> torch.Tensor:
    """``images`` with the channels and size asked for (None: as they are)."""
    if channels is not None:
        images = to_channels(images, channels)
    if size is not None:
        images = to_size(images, size)
    return images


def cache_key(parts: Any) -> str:
    """A short hash of anything JSON can write: the identity of a cached decode."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def read_cached(path: Path) -> dict[str, Any] | None:
    """The tensors saved at ``path``, or None when absent or unreadable (decoded again then).

    weights_only=True: a cache file is plain tensors, lists and strings, so loading one cannot
    run code even if something else wrote it.
    """
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any damage (truncated by a crash, overwritten): decode afresh
        return None
    return data if isinstance(data, dict) else None


def write_cached(path: Path, data: dict[str, Any]) -> bool:
    """Save ``data`` beside ``path`` and rename it into place; False when that failed.

    A cache that cannot be written (read-only or full disk) costs only the next run's decode
    time, so it never fails the run.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, tmp)
        os.replace(tmp, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
