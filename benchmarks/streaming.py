"""Streaming packed shards against the resident path (issue 33), side by side in one run.

Four measurements, each printed with its ratio:

- ``loader`` (at the largest ``--images``): images/s delivered as uint8 batches by replab's
  shard loader (2 workers, decode in the workers) against torchvision ``ImageFolder`` +
  ``DataLoader`` with the same workers on the same JPEGs (``PILToTensor``, batch 256,
  shuffled). Goal >= 1.5x.
- ``memory``: peak memory (the summed PSS of the run's process and its DataLoader workers,
  sampled every 0.1 s) of the A3 recipe (SimCLR, MLP encoder) trained one epoch on a
  generated folder of 64x64 JPEGs, streamed from its shards (by default and with
  ``data.flat_memory=true``) and held in memory, at each ``--images`` count. Goal: streamed
  at the largest count within 1.3x of the smallest, while the held run grows with the data.
- ``steps``: training steps/s of the A3 recipe on MNIST (70,000 28x28 images) from shards
  against the resident run, over ``--epochs`` epochs. Goal: streamed within 1.3x. Also the
  resident run on one training thread, as the streamed run trains when its readers take the
  other CPUs' share (on 2 cores: one).
- ``same`` (not in the default set: about 30 minutes): the A1 recipe on Fashion-MNIST, 3 seeds
  resident and 3 seeds with every split streamed from its shards (the two series side by
  side, one thread each; seed s reads shards packed with seed s, so both runs of a seed
  validate on the same images): probe test accuracy and test MAE, mean and std. Goal: each
  streamed mean within the resident seeds' spread.

The generated images are smooth random colour fields with a class-dependent tint, written as
JPEG quality 90 (about 2 KB each). Run from the repository root on an idle machine::

    .venv/bin/python benchmarks/streaming.py [--images 20000,200000] [--epochs 2]
        [--work /tmp/replab-streaming] [--json benchmarks/results/streaming.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, add_machine_args, environment, timed, use_threads  # noqa: E402

CLASSES = 10
SIZE = 64
BATCH = 256
# 8 MB shards: several per split even at 20,000 images, so both workers have shards to read
# (a real large dataset has hundreds of 1 GB shards; one shard feeds one worker at most)
SHARD_MB = 8
SEEDS = 3  # of each series in `same`


def _write_block(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    folder, start, stop = args
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        c = i % CLASSES
        coarse = rng.random((8, 8, 3)) * 160 + np.array([c * 9, 255 - c * 20, c * 15]) * 0.35
        image = Image.fromarray(coarse.clip(0, 255).astype(np.uint8)).resize((SIZE, SIZE))
        image.save(folder / f"c{c}" / f"{i:07d}.jpg", quality=90)


def make_folder(root: Path, n: int) -> Path:
    """``n`` 64x64 JPEGs in ``CLASSES`` class folders (made once, reused)."""
    folder = root / f"jpegs-{n}"
    if (folder / ".complete").exists():
        return folder
    for c in range(CLASSES):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
    blocks = [(folder, s, min(s + 2000, n)) for s in range(0, n, 2000)]
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_block, blocks)
    (folder / ".complete").write_text("")
    return folder


def packed(
    folder: Path | None, root: Path, name: str, dataset: str = "image_folder", seed: int = 0
) -> Path:
    from replab.data.pack import pack

    out = root / f"shards-{name}-{SHARD_MB}mb"
    if not (out / "index.json").exists():
        root_ = str(folder) if folder else None
        pack(dataset, out, root=root_, shard_bytes=SHARD_MB << 20, seed=seed, progress=False)
    return out


def loader_rates(folder: Path, shards: Path, workers: int) -> dict:
    """Images/s of both loaders over the whole training split, as uint8 batches."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import PILToTensor

    from replab.data import load_splits
    from replab.data.stream import StreamLoader

    train = load_splits(
        "shards", root=str(shards), streaming={"resident": False, "verify": False}
    ).train
    ours = StreamLoader(train, BATCH, seed=0, workers=workers)
    theirs = torch.utils.data.DataLoader(
        ImageFolder(str(folder), transform=PILToTensor()),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
    )
    for path in (folder, shards):  # both from the page cache: a cold folder of 200,000
        for file in path.rglob("*"):  # files read from disk took 2.7x as long (54.6 s)
            if file.is_file():
                file.read_bytes()
    out = {}
    for name, loader in (("replab shards", ours.raw()), ("torchvision ImageFolder", theirs)):
        n = 0
        with timed() as t:
            for x, _ in loader:
                n += len(x)
        out[name] = {"images": n, "seconds": round(t.seconds, 2), "per_s": round(n / t.seconds)}
    out["ratio"] = round(out["replab shards"]["per_s"] / out["torchvision ImageFolder"]["per_s"], 2)
    return out


def tree_pss(pid: int) -> int:
    """Bytes of proportional set size of ``pid`` and its descendants (shared pages split)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def peak_run(args: list[str], runs: Path, **env_: str) -> dict:
    """Run ``replab run ARGS``; its wall time and the peak summed PSS of its process tree."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **env_)
    cmd = [sys.executable, "-m", "replab.cli", "run", *args, "--runs-dir", str(runs)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_pss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0].decode()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"replab run failed:\n{output[-3000:]}")
    epochs = [ln for ln in output.splitlines() if re.match(r"\[replab\] epoch +\d+/", ln)]
    return {
        "seconds": round(time.perf_counter() - start, 1),
        # the log's "(12.3 s)" is the training time so far: the last one is the total
        "train_seconds": [float(re.findall(r"\(([\d.]+) s\)", ln)[-1]) for ln in epochs][-1:],
        "peak_mib": round(peak[0] / 2**20),
    }


A3 = [
    "a3-mnist-simclr",
    "trainer.epochs=1",
    "trainer.early_stopping=null",
    "probe.enabled=false",
    "analysis.enabled=false",
    "monitor.enabled=false",
    "trainer.progress=false",
]


def memory(root: Path, counts: list[int]) -> dict:
    """Peak memory at each count: streamed (default and ``data.flat_memory``) and held."""
    out: dict = {}
    kinds = {
        "streamed": ["data.resident=false"],
        "streamed flat_memory": ["data.resident=false", "data.flat_memory=true"],
        "held": ["data.resident=true"],
    }
    for n in counts:
        shards = packed(make_folder(root, n), root, f"jpegs-{n}")
        for kind, options in kinds.items():
            out[f"{kind} {n:,}"] = peak_run(
                [*A3, "data.dataset=shards", f"data.root={shards}", "data.val_fraction=0.1",
                 *options],
                root / "runs",
            )  # fmt: skip
    lo, hi = min(counts), max(counts)
    for kind in kinds:
        growth = out[f"{kind} {hi:,}"]["peak_mib"] / out[f"{kind} {lo:,}"]["peak_mib"]
        out[f"{kind} growth"] = round(growth, 2)
    return out


def steps(root: Path, data_dir: Path, epochs: int) -> dict:
    """A3 on MNIST: the trainer's own epoch times, resident against streamed."""
    os.environ["REPLAB_DATA"] = str(data_dir)
    shards = packed(None, root, "mnist", dataset="mnist")
    common = [*A3[:1], f"trainer.epochs={epochs}", *A3[2:]]
    out = {
        "resident": peak_run([*common, "data.download=false"], root / "runs"),
        "streamed": peak_run(
            [*common, "data.dataset=shards", f"data.root={shards}", "data.resident=false"],
            root / "runs",
        ),
        # the ablation: the streamed run trains on one thread, its readers taking the other
        # CPU; this is the resident run on one thread too
        "resident, 1 thread": peak_run(
            [*common, "data.download=false"], root / "runs", REPLAB_THREADS="1"
        ),
    }
    # steps an epoch: the resident loader keeps a last partial batch, the streamed one does not
    steps_of = {"resident": -(-54_000 // 512), "streamed": 54_000 // 512}
    steps_of["resident, 1 thread"] = steps_of["resident"]
    for name, n in steps_of.items():
        seconds = out[name]["train_seconds"][0]
        out[name]["steps_per_s"] = round(n * epochs / seconds, 2)
    out["ratio (resident, 1 thread / streamed steps/s)"] = round(
        out["resident, 1 thread"]["steps_per_s"] / out["streamed"]["steps_per_s"], 2
    )
    out["ratio (resident / streamed steps/s)"] = round(
        out["resident"]["steps_per_s"] / out["streamed"]["steps_per_s"], 2
    )
    return out


def same(root: Path, data_dir: Path, options: list[str], seeds: int = SEEDS) -> dict:
    """A1 on Fashion-MNIST, resident against streamed, ``seeds`` seeds each, ``options`` added
    to both. Each seed's shards are packed with that seed, so its validation split is the one
    the resident run of that seed carves: the two series differ in how the data is read."""
    os.environ["REPLAB_DATA"] = str(data_dir)
    shards = [
        packed(None, root, f"fashion_mnist-seed{seed}", dataset="fashion_mnist", seed=seed)
        for seed in range(seeds)
    ]
    series = {
        "resident": [["data.dataset=fashion_mnist", "data.download=false"]] * seeds,
        "streamed": [
            ["data.dataset=shards", f"data.root={folder}", "data.resident=false"]
            for folder in shards
        ],
    }
    env = dict(os.environ, PYTHONPATH=str(REPO), REPLAB_THREADS="1")
    runs = root / ("same" + "".join(f"-{o}" for o in options))
    procs = {}
    for name, data in series.items():
        script = " && ".join(
            " ".join(
                [
                    sys.executable,
                    "-m",
                    "replab.cli",
                    "run",
                    "a1-mnist-autoencoder",
                    *data[seed],
                    f"seed={seed}",
                    "trainer.progress=false",
                    *options,
                    "--runs-dir",
                    str(runs / name),
                ]
            )  # fmt: skip
            for seed in range(seeds)
        )
        procs[name] = subprocess.Popen(script, shell=True, env=env, stdout=subprocess.DEVNULL)
    for name, proc in procs.items():
        if proc.wait():
            raise SystemExit(f"the {name} A1 runs failed")
    return same_figures({name: sorted((runs / name).iterdir())[-seeds:] for name in series})


def same_figures(runs: dict[str, list[Path]]) -> dict:
    """Each series' test figures, its early-stopping epochs, and its validation loss at the
    epochs every run reached (where the two read paths can be compared epoch for epoch)."""
    out: dict = {}
    curves = {
        name: [
            [
                row
                for line in (r / "metrics.jsonl").read_text().splitlines()
                if "val_loss" in (row := json.loads(line))
            ]
            for r in folders
        ]
        for name, folders in runs.items()
    }
    reached = min(len(c) for series in curves.values() for c in series)
    marks = [e for e in (5, 10, 20, 30, 40, 50, 60, 70) if e <= reached]
    for name, folders in runs.items():
        summaries = [json.loads((r / "summary.json").read_text()) for r in folders]
        metrics = [s["metrics"] for s in summaries]
        out[name] = {
            key: {
                "values": [round(m[key], 4) for m in metrics],
                "mean": round(float(np.mean([m[key] for m in metrics])), 4),
                "std": round(float(np.std([m[key] for m in metrics], ddof=1)), 4),
            }
            for key in ("probe.test_accuracy", "test.mae")
        }
        out[name]["stopped after epochs"] = [s["epochs"] for s in summaries]
        out[name]["val_loss at epochs"] = {
            e: [round(c[e - 1]["val_loss"], 4) for c in curves[name]] for e in marks
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--images", default="20000,200000", help="comma-separated counts")
    parser.add_argument("--epochs", type=int, default=2, help="A3 epochs for the steps figure")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/replab-streaming"))
    parser.add_argument("--only", choices=["loader", "memory", "steps", "same"], action="append")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--same-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option for both series of `same` (e.g. trainer.early_stopping=null)",
    )
    parser.add_argument(
        "--same-from",
        type=Path,
        help="summarise the `same` runs already in this folder (its resident/ and streamed/) "
        "instead of running them",
    )
    args = parser.parse_args()
    use_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.images.split(",")]
    parts = args.only or ["loader", "memory", "steps"]
    result: dict = {"environment": environment(images=counts, workers=args.workers)}
    if "loader" in parts:
        folder = make_folder(args.work, counts[-1])
        result["loader"] = loader_rates(
            folder, packed(folder, args.work, folder.name), args.workers
        )
        print("loader", json.dumps(result["loader"], indent=1), flush=True)
    if "memory" in parts:
        result["memory"] = memory(args.work, counts)
        print("memory", json.dumps(result["memory"], indent=1), flush=True)
    if "steps" in parts:
        result["steps"] = steps(args.work, args.data_dir, args.epochs)
        print("steps", json.dumps(result["steps"], indent=1), flush=True)
    if args.same_from:
        folders = ("resident", "streamed")
        runs = {n: sorted((args.same_from / n).iterdir())[-SEEDS:] for n in folders}
        result["same"] = same_figures(runs)
        print("same", json.dumps(result["same"], indent=1), flush=True)
    elif "same" in parts:
        result["same"] = same(args.work, args.data_dir, args.same_set)
        print("same", json.dumps(result["same"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
