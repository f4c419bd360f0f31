"""What every benchmark script shares: the clocks, the "disturbed" check, the environment
record and the staging of MNIST-style raw files for torchvision.

A timing is *disturbed* when other processes used more than ``DISTURBED`` of the machine's
CPU while it ran (read from ``/proc/stat``: whole-machine busy time minus this process's
own CPU time and its reaped children's). On a 2-core machine one competing process slows
a 2-thread torch run several times, unevenly, so a disturbed figure is not a result.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DISTURBED = 0.10  # other processes used more than this share of the CPU during a timing
MNIST_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_data_dir() -> Path:
    """``$REPLAB_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("REPLAB_DATA") or REPO.parent / "shared" / "data").expanduser()


def add_machine_args(parser) -> None:
    """The options every benchmark shares: torch's thread count and the dataset folder."""
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="default $REPLAB_DATA, else ../shared/data",
    )


def use_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def data_overrides(data_dir: Path, device: str) -> list[str]:
    """Recipe overrides that read the local dataset copy (never download) onto ``device``."""
    return [
        f"data.root={json.dumps(str(Path(data_dir).expanduser().resolve()))}",
        "data.download=false",
        f"data.device={device}",
    ]


def cpu_clock() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this
    process and its reaped children)."""
    busy = 0.0
    stat = Path("/proc/stat")
    if stat.is_file():
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:9]]
        # minus idle, iowait
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system


@dataclass
class Timing:
    seconds: float = 0.0
    other_share: float = 0.0  # share of the machine's CPU other processes used meanwhile

    @property
    def disturbed(self) -> bool:
        return self.other_share > DISTURBED


class timed:
    """``with timed(sync) as t: ...``: wall seconds and the share of CPU used elsewhere.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before starting and before stopping
    the clock, so queued GPU work is inside the measurement.

    Note: DataLoader worker processes are not reaped children while they run, so their CPU
    time counts as "elsewhere"; a timing with ``num_workers > 0`` can read as disturbed.
    """

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync or (lambda: None)
        self.result = Timing()

    def __enter__(self) -> Timing:
        self.sync()
        self._busy, self._own = cpu_clock()
        self._start = time.perf_counter()
        return self.result

    def __exit__(self, *exc) -> None:
        self.sync()
        seconds = time.perf_counter() - self._start
        busy, own = cpu_clock()
        self.result.seconds = seconds
        self.result.other_share = max(0.0, (busy - self._busy) - (own - self._own)) / (
            max(seconds, 1e-9) * (os.cpu_count() or 1)
        )


def synchronizer(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(**extra) -> dict:
    """Versions, threads, CPU/GPU model and load average: what a figure was measured on."""
    import torchvision

    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "mp_start_method": multiprocessing.get_start_method(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    return {**env, **extra}


def stage_torchvision_raw(folder: Path, dest: Path, name: str = "MNIST") -> Path:
    """Gunzip the four IDX files of ``folder`` into ``dest/<name>/raw`` (torchvision reads
    only uncompressed files); returns ``dest``, the ``root`` torchvision wants."""
    raw = dest / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for file in MNIST_RAW_FILES:
        packed = folder / f"{file}.gz"
        if packed.is_file():
            with gzip.open(packed, "rb") as src, open(raw / file, "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            shutil.copyfile(folder / file, raw / file)
    return dest


def disturbed_warning(labels: list[str]) -> str | None:
    if not labels:
        return None
    return (
        "WARNING: other processes "
        f"used > {DISTURBED:.0%} of the CPU while timing {', '.join(labels)}; "
        "these figures are not results: rerun on an idle machine"
    )
