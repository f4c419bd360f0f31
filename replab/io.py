"""Atomic file writes and safe checkpoint loading, shared by every layer that writes; and how
every layer speaks to the user: ``Log`` lines, ``warn`` for warnings, ``LOGGER``.

A file is written beside its final name, flushed to disk and renamed over it, so a
crash or a full disk leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import importlib
import io
import json
import logging
import os
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from replab.errors import CheckpointError, DiskFullError, ReplabError, ReplabWarning

# What every layer takes to tell the user how a long job goes: one line at a time (the CLI
# prints it, a notebook may collect it; the Python API's default is LOGGER.info).
Log = Callable[[str], None]

# The library's log for what is not a warning: silent unless the application configures
# logging (replab/__init__.py gives it a NullHandler, as libraries do).
LOGGER = logging.getLogger("replab")

# The lists of the jobs recording their warnings now (``recording_warnings``), innermost last.
_RECORDING: list[list[str]] = []


def warn(message: str) -> None:
    """What the user must see although the job goes on: a ``ReplabWarning`` through Python's
    ``warnings`` (a notebook shows it, the command line prints it), and a line of each
    ``recording_warnings`` list open now (a run's summary.json keeps them)."""
    for seen in _RECORDING:
        seen.append(message)
    warnings.warn(message, ReplabWarning, stacklevel=2)


def progress_bar(iterable: Any = None, **options: Any) -> Any:
    """A tqdm bar: tqdm's own in a terminal; in a Jupyter kernel one line of text per cell that
    every bar of the cell updates in place (``_CellBar``), so a run's epochs, probe and
    analysis leave one output, not one per bar, and need no ipywidgets."""
    if _in_jupyter():
        return _cell_bar_class()(iterable, file=io.StringIO(), mininterval=0.5, **options)
    from tqdm import tqdm

    return tqdm(iterable, **options)


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and type(get()).__name__ == "ZMQInteractiveShell"


@functools.cache
def _cell_bar_class() -> type:
    from IPython import get_ipython
    from IPython.display import display
    from tqdm.std import tqdm

    handles: dict[int, Any] = {}  # the one progress output of each executed cell

    class _CellBar(tqdm):
        """Draws into the cell's single progress output (an IPython display updated by its
        id): a notebook saved afterwards holds its last state only. Closing keeps that state
        instead of blanking it, and tqdm's own writes go to a string, never to stderr."""

        def display(self, msg: str | None = None, pos: int | None = None) -> bool:
            if msg == "":  # tqdm clears a leave=False bar's line when it closes
                return True
            shell = get_ipython()
            cell = getattr(shell, "execution_count", 0) or 0
            line = {"text/plain": msg if msg is not None else str(self)}
            handle = handles.get(cell)
            if handle is None:
                handles[cell] = display(line, raw=True, display_id=True)
            else:
                handle.update(line, raw=True)
            return True

    return _CellBar


@contextlib.contextmanager
def recording_warnings() -> Iterator[list[str]]:
    """The messages ``warn`` gives while the block runs (jobs of one process take turns)."""
    seen: list[str] = []
    _RECORDING.append(seen)
    try:
        yield seen
    finally:
        _RECORDING.remove(seen)


TMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files should read like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_error(path: Path, err: OSError) -> ReplabError:
    """The user-facing error for a failed write: a full disk, or a path that cannot be written."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            f"the disk is full while writing {path}: "
            "the previous version of the file, if any, is intact",
            "free some space (or point --runs-dir at another disk), "
            "then continue with `replab run --resume RUN_DIR`",
        )
    return ReplabError(
        f"cannot write {path}: {err.strerror or err}",
        "check that the folder (e.g. "
        "--runs-dir) is a writable directory, not a file, and that you may write there",
    )


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files a killed process left beside its files (``.NAME.*.tmp``)."""
    removed = []
    for tmp in Path(folder).rglob(f".*{TMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


LOCK_FILE = ".replab.lock"


# the descriptors of the writer locks this process holds: a forked child (a DataLoader reader)
# shares each one's open file, so the flock would outlive a SIGKILLed writer by as long as its
# readers take to notice; the child closes its copies at once (the parent keeps the lock)
_HELD_LOCKS: set[int] = set()


def _drop_locks_in_child() -> None:
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_drop_locks_in_child)


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run") -> Iterator[None]:
    """Hold ``folder``'s writer lock: one process at a time writes a run, sweep or study folder.

    An ``fcntl.flock`` on ``folder/.replab.lock``: the kernel releases it when the process ends
    however it ends (SIGKILL included), so a stale lock cannot outlive its writer, and two
    processes that start at the same instant cannot both get it. The file names its holder
    (pid, host, command) for the other's error, and is removed when the holder is done, so a
    folder looks as it did before. flock is advisory and local: on NFS it may not exclude a
    process on another machine.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        except OSError as err:
            raise write_error(path, err) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = None
            for _ in range(200):  # the holder writes its name just after its flock
                owner = _lock_owner(fd)
                if owner:
                    break
                time.sleep(0.01)
            os.close(fd)
            owner = owner or "a process that has not written its name"
            raise ReplabError(
                f"{folder} is being written by another process ({owner}); "
                f"one process at a time may write a {what} folder",
                "wait for that process to finish, or stop it, then run the command again",
            ) from None
        # The holder before us may have removed the file between our open and our flock: then
        # we hold a lock on a name nobody else sees. Lock the file that is at the path now.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        holder = {
            **process_record(),
            "command": " ".join(sys.argv)[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        _HELD_LOCKS.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        _HELD_LOCKS.discard(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it: the next writer re-checks the inode
        os.close(fd)


def _lock_owner(fd: int) -> str | None:
    """'pid N on HOST: COMMAND, since T' from a held lock file; None while it is still empty
    (the instant between the holder's flock and its write)."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
        if host == socket.gethostname() and not process_alive(owner):
            # a name left by a writer that died (SIGKILL leaves the file, not the lock), or
            # copied with the folder: the live holder has not written over it yet
            return None
        return (
            f"pid {pid} on {host[:100]}: "
            f"`{str(owner['command'])[:200]}`, since {str(owner['since'])[:40]}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def process_record(pid: int | None = None) -> dict:
    """This process (or ``pid``, one it started) as the files that name their writer record it:
    pid, host and (Linux) its start time, which tells the process apart from a later one given
    the same pid."""
    pid = os.getpid() if pid is None else pid
    record: dict[str, Any] = {"pid": pid, "host": socket.gethostname()}
    started = start_ticks(pid)
    if started is not None:
        record["pid_start"] = started
    return record


def process_alive(record: dict) -> bool:
    """True when the process a record names (``process_record``'s keys) still runs on this
    host. A pid reused since (containers hand out the same low pids run after run) is another
    process, told apart by its start time; a record from another host is never alive here."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0 or record.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # it exists but is another user's
    fields = _stat_fields(pid)
    if fields is not None and fields[0] == "Z":
        return False  # ended, not yet reaped by the process that started it
    started = _start_of(fields)
    return started is None or record.get("pid_start") in (None, started)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None elsewhere."""
    return _start_of(_stat_fields(pid))


def _start_of(fields: list[str] | None) -> int | None:
    try:
        return int(fields[19]) if fields is not None else None
    except (ValueError, IndexError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: state, parent pid, ... (Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()
    except (OSError, ValueError):
        return None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    """Append one line; a torn last line (crash mid-write) is skipped by ``read_jsonl``."""
    try:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")
    except OSError as err:
        raise write_error(Path(path), err) from None


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
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist", "check the run folder path"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(
            f"cannot load checkpoint {str(path)!r}: "
            f"{(str(err).splitlines() or [type(err).__name__])[0][:300]}",
            "it is corrupt, not a replab checkpoint, "
            "or holds objects other than tensors; use a checkpoint written by replab",
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a replab checkpoint",
            "use a checkpoint written by replab",
        )
    return state


def load_state_into(module: torch.nn.Module, state: dict, path: Path | str) -> None:
    """Load a state dict, turning shape/key mismatches into an error that says which model fits."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        first = str(err).replace("\n", " ")[:400]
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model ({first})",
            "resume with the recipe the checkpoint was trained with "
            "(the run folder's config.yaml), or start a new run",
        ) from None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def import_limited(module: str) -> Any:
    """``module`` imported, and the BLAS and OpenMP libraries it loaded limited to torch's
    thread count (the run's share, see ``limit_native_threads``). For scikit-learn and openTSNE,
    which bring their own OpenBLAS and libgomp."""
    if module in sys.modules:
        return sys.modules[module]
    loaded = importlib.import_module(module)
    limit_native_threads(torch.get_num_threads())
    return loaded


@contextlib.contextmanager
def threads_set(threads: int) -> Iterator[None]:
    """torch's and the native libraries' thread counts at ``threads`` for the block, then back:
    for a result that must not depend on the run's share."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    limit_native_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        limit_native_threads(before)


def limit_native_threads(threads: int) -> None:
    """The loaded BLAS and OpenMP libraries (numpy's and scipy's OpenBLAS, scikit-learn's
    libgomp) use at most ``threads`` threads: the run's share, as torch does. Each starts with
    one thread per core, so beside another run on 2 cores their threads wait on each other
    (an A1 quick analysis with one thread: 4.0 s alone, 8.1 s beside another worker). A
    library loaded later is limited by the next call (``import_limited`` makes one)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    threadpool_limits(limits=max(1, int(threads)))
