"""What a dataset file may declare before replab refuses to read it: memory bounded by what
the data says about itself, checked before anything is decoded or allocated.

- An image may declare at most ``max_image_pixels()`` pixels (width x height): Pillow's own
  decompression-bomb limit, 89,478,485 (0.25 GiB of 8-bit RGB), unless
  ``REPLAB_MAX_IMAGE_PIXELS=N`` raises or lowers it. A 1 MB PNG can declare 30000x30000.
- The images of a folder, or the arrays of an npz file, are refused when what their headers
  declare (times the copies reading them makes) is more than ``available_memory()``.
- A labelled set names at most ``MAX_CLASSES`` classes.
"""

from __future__ import annotations

import os

from replab.errors import ConfigError

PILLOW_MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3
PIXELS_VARIABLE = "REPLAB_MAX_IMAGE_PIXELS"
MAX_CLASSES = 10_000
GIB = 1 << 30


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


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable of /proc/meminfo on Linux, else the free
    physical pages; very large when neither can be read (no check then)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def gib(nbytes: int | float) -> str:
    return f"{nbytes / GIB:,.1f} GiB"
