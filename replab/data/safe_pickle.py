"""A restricted unpickler for the CIFAR-10 python batches.

The batches are pickles, and a pickle can run arbitrary code when loaded. This unpickler
resolves only the handful of globals a pickled numpy array needs; anything else is refused.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from replab.errors import DataError

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),  # how numpy writes arrays into protocol-5 pickles
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how Python 3 writes bytes into protocol-2 pickles
}


MAX_PICKLE_BYTES = 256 << 20


class RefusedGlobal(pickle.UnpicklingError):
    """A global outside ALLOWED_GLOBALS (other UnpicklingErrors mean a truncated file)."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(f"global '{module}.{name}' is not allowed")
        return super().find_class(module, name)


def load_pickle(path: Path, dataset: str = "CIFAR-10", folder: str = "cifar-10-batches-py") -> Any:
    """Unpickle ``path`` allowing only numpy arrays, dicts, lists, strings and numbers.

    ``dataset`` and ``folder`` name what the file should be, for the error's fix.
    """
    try:
        # A real batch is about 31 MB. Unpickling allocates at most a small multiple of the
        # file's size (every object comes from its bytes, and no allowed global multiplies
        # them: numpy checks a shape against its buffer), so bounding the file bounds memory.
        size = path.stat().st_size
        if size > MAX_PICKLE_BYTES:
            raise DataError(
                f"refused to load {str(path)!r}: it is {size / 2**20:,.0f} MiB, larger than "
                f"any CIFAR batch ({MAX_PICKLE_BYTES >> 20} MiB at most)",
                "replace it with the official cifar-10-batches-py files",
            )
        data = path.read_bytes()
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedGlobal as err:
        raise DataError(
            f"refused to load {str(path)!r}: {err}; a {dataset} file holds only arrays and "
            "lists, so this file is not one (or was tampered with)",
            f"replace it with the official {folder} files",
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        # Random bytes can also claim absurd lengths or nest without end.
        OverflowError,
        MemoryError,
        RecursionError,
    ) as err:
        raise DataError(
            f"cannot read {str(path)!r}: {err} (truncated or corrupt)",
            f"delete the folder and let replab download {dataset} again, "
            "or point data.root at an intact copy",
        ) from None
