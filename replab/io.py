"""Atomic file writes and safe checkpoint loading, shared by every layer that writes.

A file is written beside its final name, flushed to disk and renamed over it, so a
crash or a full disk leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from replab.errors import CheckpointError, ReplabError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files should read like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ReplabError(
                f"the disk is full while writing {path} (the previous version, if any, is intact)",
                "free some space or point --runs-dir at another disk, then run again with --resume",
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one line; a torn last line (crash mid-write) is skipped by ``read_jsonl``."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_jsonable) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load with ``weights_only=True``: tensors and plain containers only, never code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist", "check the run folder path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(
            f"cannot load checkpoint {str(path)!r}: {str(err).splitlines()[0][:300]}",
            "it is corrupt, not a replab checkpoint, or holds objects other than tensors; use a checkpoint written by replab",
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a replab checkpoint", "use a checkpoint written by replab")
    return state


def load_state_into(module: torch.nn.Module, state: dict, path: Path | str) -> None:
    """Load a state dict, turning shape/key mismatches into an error that says which model fits."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        first = str(err).replace("\n", " ")[:400]
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model ({first})",
            "resume with the recipe the checkpoint was trained with (the run folder's config.yaml), or start a new run",
        ) from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
