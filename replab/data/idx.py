"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from replab.errors import DataError

_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in an IDX file; truncated or corrupt files raise DataError."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _corrupt(path, f"cannot be decompressed ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise _corrupt(path, "does not start with an IDX header")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(path, "is truncated inside its header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise _corrupt(path, f"holds {len(raw) - header:,} data bytes but its header announces {expected - header:,} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=_DTYPES[raw[2]], offset=header).reshape(dims)


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(
        f"dataset file {str(path)!r} {what}",
        "delete it and let replab download it again, or point data.root / REPLAB_DATA at an intact copy",
    )
