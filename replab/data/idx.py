"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from replab.errors import DataError

_DTYPES = {0x08: np.uint8}


MAX_IDX_BYTES = 1 << 31  # 2 GiB: far above any IDX dataset, far below a decompression bomb's claim


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in an IDX file; truncated or corrupt files raise DataError.

    The header is read first and only as many bytes as it announces (plus one, to catch
    trailing data) are decompressed, so a gzip bomb cannot fill memory.
    """
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
                raise _corrupt(path, "does not start with an IDX header")
            ndim = head[3]
            dim_bytes = f.read(4 * ndim)
            if len(dim_bytes) < 4 * ndim:
                raise _corrupt(path, "is truncated inside its header")
            dims = [int.from_bytes(dim_bytes[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            size = math.prod(dims)
            if size > MAX_IDX_BYTES:
                raise _corrupt(
                    path,
                    f"announces {size:,} data bytes in its header "
                    f"(dimensions {dims}), more than any real dataset",
                )
            data = f.read(size + 1)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise _corrupt(path, f"cannot be decompressed ({err})") from None
    if len(data) != size:
        more = "at least " if len(data) > size else ""
        raise _corrupt(
            path,
            f"holds {more}{len(data):,} "
            f"data bytes but its header announces {size:,} (truncated or corrupt)",
        )
    return np.frombuffer(data, dtype=_DTYPES[head[2]]).reshape(dims)


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(
        f"dataset file {str(path)!r} {what}",
        "delete it and let replab download it again, "
        "or point data.root / REPLAB_DATA at an intact copy",
    )
