"""How many threads a run may use, and sharing the CPUs with the other replab runs.

On a 2-core machine two processes that each start torch's default 2 threads run about 4.5x
slower than one (measured, issue 19): their threads wait on each other. So a run takes

1. ``--threads N`` (the command line calls :func:`fix`), else ``$REPLAB_THREADS``: exactly N;
2. otherwise a fair share: the CPUs this process may use (its affinity mask and its cgroup's
   CPU quota, never ``os.cpu_count()``, which counts the whole host) divided among the replab
   runs alive on this host, and among the ``--jobs`` workers of its own command.

Live runs are files ``<cache>/live/<pid>.json``; a run writes its own at start, removes it at
the end, and recounts the others at every epoch boundary. A file whose process is gone
(SIGKILL leaves one) is ignored and deleted by the next reader.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from replab.data import cache_dir
from replab.data.limits import CGROUP
from replab.errors import ConfigError
from replab.io import limit_native_threads, process_alive, process_record

ENV = "REPLAB_THREADS"
LIVE = "live"

_fixed: int | None = None  # --threads of this command
_jobs = 1  # the --jobs workers of one command: each takes at most 1/jobs of the CPUs
# torch's own count, read when replab is imported, before replab changes it
_default: int = torch.get_num_threads()


def fix(threads: int | None) -> None:
    """``--threads``: every run of this process, and the processes it starts, use exactly N."""
    global _fixed
    if threads is not None:
        _fixed = check_count(threads, "--threads")
        os.environ[ENV] = str(_fixed)  # spawned workers inherit it


def partition(jobs: int) -> None:
    """This process is one of ``jobs`` workers of one command."""
    global _jobs
    _jobs = max(1, int(jobs))


def check_count(value: object, where: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1 or n > 4096:
        raise ConfigError(
            f"{where}={value!r} is not a thread count", f"give a whole number >= 1 to {where}"
        )
    return n


def fixed_threads() -> tuple[int, str] | None:
    """(count, where it came from) when the user fixed it; None for a fair share."""
    if _fixed is not None:
        return _fixed, "--threads"
    raw = os.environ.get(ENV, "").strip()
    if raw:
        return check_count(raw, ENV), ENV
    return None


# --- what this process may use -------------------------------------------------------------


def cgroup_cpus(root: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 = 150 ms per 100 ms), None if
    unlimited or unknown. cgroup v2: ``cpu.max`` ("max 100000" or "150000 100000");
    v1: ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = unlimited)."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            return _ratio(parts[0], parts[1])
        return None
    for folder in (root / "cpu", root / "cpu,cpuacct", root):
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ratio(quota, period)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def torch_default() -> int:
    """torch's own thread count before replab set one: the physical cores (hyper-threads add
    nothing to its kernels), or ``OMP_NUM_THREADS`` when set."""
    return _default


def usable_cpus(root: Path = CGROUP) -> int:
    """The CPUs this process may use: its affinity mask and its cgroup quota (rounded down,
    at least 1), whichever is smaller; not torch's thread count, which ``OMP_NUM_THREADS``
    sets per process (``--jobs`` counts the machine's worker room by this)."""
    cpus = affinity_cpus()
    quota = cgroup_cpus(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def available_cpus(root: Path = CGROUP) -> int:
    """The CPUs this process may keep busy: ``usable_cpus`` and torch's own default, whichever
    is smaller."""
    return max(1, min(usable_cpus(root), torch_default()))


# --- the live registry ----------------------------------------------------------------------


def live_dir() -> Path:
    return cache_dir() / LIVE


def live_runs(folder: Path | None = None) -> list[dict]:
    """The registered runs alive on this host; entries of dead processes are deleted."""
    folder = folder or live_dir()
    found = []
    with contextlib.suppress(OSError):
        for path in folder.glob("*.json"):
            try:
                entry = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written; counted at the next look
            if not isinstance(entry, dict) or entry.get("host") != socket.gethostname():
                continue  # a cache shared between machines: not our CPUs
            if process_alive(entry):
                found.append(entry)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
    return found


def _register(folder: Path, threads: int) -> Path | None:
    return _write_entry(folder, {**process_record(), "threads": threads, "time": time.time()})


def _write_entry(folder: Path, entry: dict) -> Path | None:
    path = folder / f"{entry['pid']}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{entry['pid']}.tmp"
        tmp.write_text(json.dumps(entry))
        tmp.replace(path)
    except OSError:
        return None  # a read-only cache: no sharing, the run still works
    return path


def register_helper(pid: int, threads: int, folder: Path | None = None) -> None:
    """Count process ``pid``, started by this run, as using ``threads`` CPUs until it ends:
    every run's next recount leaves them to it. Written by the run that starts it, so the
    count holds from its first instant; readers delete the entry once the process is gone."""
    entry = {**process_record(pid), "threads": threads, "helper": True, "time": time.time()}
    _write_entry(folder or live_dir(), entry)


# --- a run's share ----------------------------------------------------------------------------


@dataclass
class CpuShare:
    """The threads of one run: chosen at start, recounted at each epoch boundary."""

    available: int
    folder: Path | None = None  # the live registry (default: <cache>/live)
    threads: int = 0
    source: str = ""
    counts: list[int] = field(default_factory=list)
    entry: Path | None = None
    # CPUs left to this run's own loader processes (streamed shards' decoding workers)
    readers: int = 0

    def choose(self) -> int:
        fixed = fixed_threads()
        if fixed is not None:
            self.threads, self.source = fixed
            return self.threads
        entries = live_runs(self.folder)
        # a helper (image_ahead's) takes its fixed threads off the top; runs share the rest
        lent = sum(int(e.get("threads", 1)) for e in entries if e.get("helper"))
        live = max(1, sum(not e.get("helper") for e in entries))
        cpus = max(1, self.available - lent)
        # the loader's workers decode beside training: left their CPUs, not oversubscribed
        # (2 cores, A3 from shards: 2 threads + 2 workers 9.3 s an epoch, 1 + 2 workers 6.7 s)
        share = max(1, min(cpus // live, self.available // _jobs))
        readers = min(self.readers, share - 1)
        self.threads = share - readers
        self.source = f"fair share of {self.available} CPUs: {live} live run(s), --jobs {_jobs}"
        if lent:
            self.source += f", {lent} lent to a helper"
        if readers:
            self.source += f", {readers} left to the shard readers"
        return self.threads

    def apply(self) -> int:
        """Choose and set torch's intra-op threads (changeable at any time)."""
        threads = self.choose()
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            limit_native_threads(threads)
        if not self.counts or self.counts[-1] != threads:
            self.counts.append(threads)
            if self.entry is not None and self.folder is not None:
                _register(self.folder, threads)
        return threads

    def record(self) -> dict:
        """What summary.json keeps: the count at start, every change, and why."""
        return {
            "threads": self.counts[0] if self.counts else torch.get_num_threads(),
            "changes": self.counts[1:],
            "source": self.source,
            "available_cpus": self.available,
        }

    def epoch_hook(self, trainer, record: dict) -> None:
        """A Trainer hook: another run started or ended since the last epoch."""
        self.apply()


def set_interop(threads: int) -> None:
    """Inter-op threads can be set once, before torch starts any parallel work; later it
    raises, and torch's default is kept (replab's models run no inter-op parallel work)."""
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


@contextlib.contextmanager
def share_cpus(folder: Path | None = None) -> Iterator[CpuShare]:
    """For the length of one run: registered as live, torch's threads set to the run's share
    (the caller may recount with ``share.apply()``); the previous count is restored after."""
    before = torch.get_num_threads()
    share = CpuShare(available_cpus(), folder or live_dir())
    # registered before counting, so two runs starting together each see the other
    assert share.folder is not None
    share.entry = _register(share.folder, share.available)
    try:
        set_interop(share.apply())
        yield share
    finally:
        if share.entry is not None:
            with contextlib.suppress(OSError):
                share.entry.unlink()
        torch.set_num_threads(before)
        limit_native_threads(before)
