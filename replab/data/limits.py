"""What a dataset file may declare before replab refuses to read it: memory bounded by what
the data says about itself, checked before anything is decoded or allocated.

- An image may declare at most ``max_image_pixels()`` pixels (width x height): Pillow's own
  decompression-bomb limit, 89,478,485 (0.25 GiB of 8-bit RGB), unless
  ``REPLAB_MAX_IMAGE_PIXELS=N`` raises or lowers it. A 1 MB PNG can declare 30000x30000.
- The images of a folder, or the arrays of an npz file, are refused when what their headers
  declare (times the copies reading them makes) is more than ``available_memory()``, the
  memory the kernel and this process's cgroup leave (``--jobs`` checks its workers by it too).
- A labelled set names at most ``MAX_CLASSES`` classes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from replab.errors import ConfigError

PILLOW_MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3
PIXELS_VARIABLE = "REPLAB_MAX_IMAGE_PIXELS"
MAX_CLASSES = 10_000
GIB = 1 << 30
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")  # this process's cgroup (v2), or the v1 controllers' root


def max_image_pixels() -> int:
    """The most pixels one image may declare: $REPLAB_MAX_IMAGE_PIXELS, else Pillow's limit."""
    raw = os.environ.get(PIXELS_VARIABLE, "").strip().replace("_", "")
    if not raw:
        return PILLOW_MAX_PIXELS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(
            f"{PIXELS_VARIABLE}={os.environ[PIXELS_VARIABLE]!r} is not a positive whole number",
            f"set {PIXELS_VARIABLE} to the most pixels an image may have (e.g. 200000000), "
            "or unset it for the default 89478485",
        )
    return int(raw)


def available_memory_mb(meminfo: Path = MEMINFO, cgroup: Path = CGROUP) -> float | None:
    """MB of memory new allocations and processes may take now: the kernel's MemAvailable, or
    less where this process's cgroup limit leaves less (its reclaimable file cache counted as
    free). None where neither is known (not Linux)."""
    found: list[float] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) / 1024)
    for limit, usage, stat, cache in (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),  # cgroup v2
        (
            "memory/memory.limit_in_bytes",
            "memory/memory.usage_in_bytes",
            "memory/memory.stat",
            "total_inactive_file",
        ),  # v1
    ):
        with contextlib.suppress(OSError, ValueError):
            cap = int((cgroup / limit).read_text().split()[0])
            if cap >= 1 << 60:  # v1's "no limit"
                continue
            used = int((cgroup / usage).read_text().split()[0])
            with contextlib.suppress(OSError, ValueError, StopIteration):
                used -= next(
                    int(line.split()[1])
                    for line in (cgroup / stat).read_text().splitlines()
                    if line.split()[0] == cache
                )
            found.append(max(0, cap - used) / (1 << 20))
    return min(found) if found else None


def available_memory() -> int:
    """Bytes of memory available now (``available_memory_mb``); elsewhere the free physical
    pages, and very large when even those cannot be read (no check then)."""
    mb = available_memory_mb()
    if mb is not None:
        return int(mb * (1 << 20))
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def gib(nbytes: int | float) -> str:
    return f"{nbytes / GIB:,.1f} GiB"
