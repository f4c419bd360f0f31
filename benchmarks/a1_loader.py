"""Time one training epoch of the study-A1 MNIST autoencoder, fed three ways.

The model is the A1 autoencoder (encoder 784-256-128, decoder 128-256-784 with a sigmoid
output, L1 loss, Adam lr 1e-3, batch 128) trained for one epoch over all 60,000 MNIST
training images. Only the way batches reach it changes:

- ``reference``: ``torchvision.datasets.MNIST`` + ``ToTensor`` + ``torch.utils.data.DataLoader``
  (shuffle, num_workers 0 and 2), as the reference report trains. torchvision wants the raw
  files uncompressed, so the four ``.gz`` files are gunzipped into a temporary folder first.
- ``replab``: ``replab.data.DeviceLoader`` over the uint8 train tensors, normalised to [0, 1]
  a batch at a time (no per-image Python, no worker processes).
- ``floor``: the same forward/backward/optimizer steps on one resident random float batch,
  no data handling at all: the compute floor.

Each measurement builds a freshly seeded model, runs a few warm-up batches, then times one
full epoch with ``time.perf_counter`` (starting a new iterator, so DataLoader worker start-up
is included, as it is in every epoch of real training). Each is repeated ``--repeats`` times
and the best is kept. Loading the files into memory is reported separately (``setup_s``).

Run from the repository root::

    .venv/bin/python benchmarks/a1_loader.py [--data-dir DIR] [--repeats 2] [--threads N]
                                             [--json benchmarks/results/a1_loader.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import DISTURBED, REPO, cpu_clock, default_data_dir, environment, stage_torchvision_raw  # noqa: E402

from replab.data import DeviceLoader, Normalizer  # noqa: E402
from replab.data.mnist import MNIST  # noqa: E402
from replab.models import AutoEncoder  # noqa: E402
from replab.models.mlp import MLPDecoder, MLPEncoder  # noqa: E402
from replab.objectives.l1 import L1Loss  # noqa: E402

SHAPE = (1, 28, 28)
BATCH_SIZE = 128
LR = 1e-3
SEED = 0
WARMUP_BATCHES = 5
TARGETS = {"reference / replab": (">=", 3.0), "replab / floor": ("<=", 1.25)}

Batches = Callable[[], Iterable]  # a fresh iterable of (x, y) batches for one epoch


# --- the model and one epoch -------------------------------------------------------------


def build_model() -> tuple[nn.Module, torch.optim.Optimizer]:
    """The A1 autoencoder and its Adam, seeded identically every time."""
    torch.manual_seed(SEED)
    encoder = MLPEncoder(SHAPE, latent_dim=128, hidden=[256])
    decoder = MLPDecoder(128, SHAPE, hidden=[256], output_activation="sigmoid")
    model = AutoEncoder(encoder, decoder).train()
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def train(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, limit: int | None = None
) -> int:
    """The trainer's step (forward, L1 against the input, backward, Adam) over ``batches``."""
    loss_fn, seen = L1Loss(), 0
    for step, (x, _) in enumerate(batches):
        if limit is not None and step >= limit:
            break
        loss = loss_fn(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(x)
    return seen


def time_epoch(make_batches: Batches, repeats: int) -> tuple[list[float], list[float], int]:
    """Seconds for one full epoch, ``repeats`` times, each on a fresh model after a warm-up.

    Also returns, per timing, the share of the machine's CPU that other processes used
    meanwhile (0 on a quiet machine): a figure taken with a large share is disturbed.
    """
    times, others, seen = [], [], 0
    for _ in range(repeats):
        model, optimizer = build_model()
        train(model, optimizer, make_batches(), limit=WARMUP_BATCHES)
        busy0, own0 = cpu_clock()
        start = time.perf_counter()
        seen = train(model, optimizer, make_batches())
        times.append(time.perf_counter() - start)
        busy1, own1 = cpu_clock()
        others.append(
            max(0.0, (busy1 - busy0) - (own1 - own0)) / (times[-1] * (os.cpu_count() or 1))
        )
    return times, others, seen


# --- the three ways of feeding it ---------------------------------------------------------


def reference_batches(root: Path, num_workers: int) -> tuple[Batches, float]:
    start = time.perf_counter()
    transform = torchvision.transforms.ToTensor()
    dataset = torchvision.datasets.MNIST(str(root), train=True, download=False, transform=transform)
    setup = time.perf_counter() - start

    def make() -> Iterable:
        return torch.utils.data.DataLoader(
            dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=num_workers
        )

    return make, setup


def replab_batches(mnist_folder: Path) -> tuple[Batches, float]:
    start = time.perf_counter()
    train_split = MNIST().load_split(mnist_folder, "train")
    loader = DeviceLoader(
        train_split.images,
        train_split.labels,
        BATCH_SIZE,
        shuffle=True,
        seed=SEED,
        normalizer=Normalizer(),
    )
    return (lambda: loader), time.perf_counter() - start


def floor_batches(samples: int) -> tuple[Batches, float]:
    """The same batch sizes as a real epoch, all slices of one resident random batch."""
    x = torch.rand(BATCH_SIZE, *SHAPE)
    y = torch.zeros(BATCH_SIZE, dtype=torch.int64)
    sizes = [min(BATCH_SIZE, samples - start) for start in range(0, samples, BATCH_SIZE)]
    return (lambda: ((x[:n], y[:n]) for n in sizes)), 0.0


# --- running, reporting -------------------------------------------------------------------


def measure(
    name: str, num_workers: int | None, batches: tuple[Batches, float], repeats: int
) -> dict:
    make, setup = batches
    times, others, seen = time_epoch(make, repeats)
    best = times.index(min(times))
    label = name if num_workers is None else f"{name} (num_workers={num_workers})"
    runs = ", ".join(
        f"{t:.3f} ({o:.0%} busy elsewhere)" for t, o in zip(times, others, strict=True)
    )
    print(f"  {label:<32} best {times[best]:7.3f} s of {runs}", flush=True)
    return {
        "method": name,
        "num_workers": num_workers,
        "label": label,
        "seconds": times[best],
        "all_seconds": times,
        "cpu_used_elsewhere": others,
        "disturbed": others[best] > DISTURBED,
        "samples": seen,
        "steps": math.ceil(seen / BATCH_SIZE),
        "samples_per_s": seen / times[best],
        "setup_s": setup,
    }


def run_all(mnist_folder: Path, repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="a1_loader_") as tmp:
        root = stage_torchvision_raw(mnist_folder, Path(tmp))
        for workers in (0, 2):
            rows.append(measure("reference", workers, reference_batches(root, workers), repeats))
    rows.append(measure("replab", None, replab_batches(mnist_folder), repeats))
    rows.append(measure("floor", None, floor_batches(rows[-1]["samples"]), repeats))
    return rows


def key_ratios(rows: list[dict]) -> dict:
    seconds = {r["label"]: r["seconds"] for r in rows}
    reference = min((r for r in rows if r["method"] == "reference"), key=lambda r: r["seconds"])
    replab, floor = seconds["replab"], seconds["floor"]
    for row in rows:
        row["ratio_vs_replab"] = row["seconds"] / replab
    values = {"reference / replab": reference["seconds"] / replab, "replab / floor": replab / floor}
    passed = {
        k: (v >= TARGETS[k][1] if TARGETS[k][0] == ">=" else v <= TARGETS[k][1])
        for k, v in values.items()
    }
    disturbed = any(r["disturbed"] for r in rows)
    return {
        "reference_figure": reference["label"],
        "values": values,
        "targets": TARGETS,
        "passed": passed,
        "disturbed": disturbed,
    }


def print_table(rows: list[dict], ratios: dict) -> None:
    print(f"\n{'method':<32} {'s/epoch':>9} {'samples/s':>11} {'vs replab':>10}")
    for r in rows:
        print(
            f"{r['label']:<32} {r['seconds']:>9.3f} "
            f"{r['samples_per_s']:>11,.0f} {r['ratio_vs_replab']:>9.2f}x"
        )
    print(f"\nreference figure: {ratios['reference_figure']}")
    for key, value in ratios["values"].items():
        op, target = TARGETS[key]
        verdict = "PASS" if ratios["passed"][key] else "FAIL"
        print(f"{key:<20} {value:6.2f}x   (target {op} {target}x)  {verdict}")
    disturbed = [r["label"] for r in rows if r["disturbed"]]
    if disturbed:
        print(
            f"WARNING: other processes used > {DISTURBED:.0%} "
            f"of the CPU while timing {', '.join(disturbed)}; rerun on a quiet machine"
        )


def a1_environment(repeats: int) -> dict:
    return environment(batch_size=BATCH_SIZE, warmup_batches=WARMUP_BATCHES, repeats=repeats)


def find_mnist(data_dir: Path) -> Path:
    folder = MNIST().locate(data_dir)
    if folder is None:
        raise SystemExit(
            f"MNIST not found under {data_dir} (expected MNIST/raw/*-ubyte[.gz]); pass --data-dir"
        )
    return folder


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="folder holding MNIST/raw (default: $REPLAB_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="timings per method; the best is kept (default 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=REPO / "benchmarks" / "results" / "a1_loader.json",
        help="where to write the results",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mnist_folder = find_mnist(args.data_dir.expanduser())
    env = a1_environment(args.repeats)
    print(
        "A1 MNIST autoencoder, one "
        f"epoch | torch {env['torch']} | {env['threads']} threads | {env['cpu']}"
    )
    rows = run_all(mnist_folder, args.repeats)
    ratios = key_ratios(rows)
    print_table(rows, ratios)
    env["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"environment": env, "data": str(mnist_folder), "results": rows, "ratios": ratios},
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
