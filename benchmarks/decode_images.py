"""First decoding of an image folder (issue 14: >= 2,000 images/s on 2 cores), and the
cached second load.

Writes a class-folder tree of images into a temporary folder, then times, with the real
image_folder code:

- ``decode/1`` and ``decode/N``: ``replab.data.image_folder.decode`` of every file with one
  thread and with all of this process's cores (the thread pool the source uses);
- ``first load``: ``load_splits("image_folder")`` with an empty cache: scan, decode, split,
  write the cache;
- ``cached load``: the same call again, reading the decoded tensors from the cache.

Two sets: ``fashion-png`` (Fashion-MNIST's first ``--n`` training images, 28x28 grey PNG;
the digits scaled to 28x28 when the data folder is absent) and ``cifar-jpeg`` (CIFAR-10 mini
images, 32x32 colour JPEG quality 90). Each timing is best of ``--repeats``; a timing is
flagged disturbed when other processes used > 10% of the CPU meanwhile.

Run from the repository root::

    .venv/bin/python benchmarks/decode_images.py [--n 10000] [--repeats 3]
        [--data-dir DIR] [--json benchmarks/results/decode_images.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torchvision.io import encode_jpeg, write_png

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import add_machine_args, environment, timed, use_threads  # noqa: E402

from replab.data import load_splits  # noqa: E402
from replab.data.image_folder import decode, scan, workers  # noqa: E402

warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)


def fashion(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from replab.data.idx import read_idx

    raw = data_dir / "FashionMNIST" / "raw"
    if (raw / "train-images-idx3-ubyte.gz").is_file():
        x = read_idx(raw / "train-images-idx3-ubyte.gz")[:n]
        return x[:, None], read_idx(raw / "train-labels-idx1-ubyte.gz")[:n]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    big = np.zeros((len(x), 28, 28), np.uint8)
    big[:, 2:26, 2:26] = np.kron(x, np.ones((3, 3), np.uint8))
    reps = -(-n // len(x))
    return np.tile(big, (reps, 1, 1))[:n, None], np.tile(bunch.target, reps)[:n]


def cifar(data_dir: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from replab.data.cifar10 import CIFAR10

    folder = CIFAR10().locate(data_dir)
    if folder is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % 10
    split = CIFAR10().load_split(folder, "train")
    reps = -(-n // len(split))
    x = split.images.numpy()
    return np.tile(x, (reps, 1, 1, 1))[:n], np.tile(split.labels.numpy(), reps)[:n]


def write(root: Path, x: np.ndarray, y: np.ndarray, fmt: str) -> None:
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        tensor = torch.from_numpy(np.array(image))
        if fmt == "png":
            write_png(tensor, str(folder / f"{i:06d}.png"))
        else:
            (folder / f"{i:06d}.jpg").write_bytes(encode_jpeg(tensor, quality=90).numpy())


def best(fn, repeats: int):
    results = []
    for _ in range(repeats):
        with timed() as t:
            fn()
        results.append(t)
    return min(results, key=lambda t: t.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--n", type=int, default=10_000, help="images per set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    use_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REPLAB_CACHE"] = str(Path(tmp) / "cache")
        for name, make, fmt in (("fashion-png", fashion, "png"), ("cifar-jpeg", cifar, "jpg")):
            x, y = make(args.data_dir, args.n)
            root = Path(tmp) / name
            write(root, x, y, fmt)
            files, _, _ = scan(root)
            n = len(files)
            for threads in sorted({1, workers()}):
                import replab.data.image_folder as source

                original = source.workers
                source.workers = lambda threads=threads: threads  # type: ignore[assignment]
                try:
                    t = best(lambda files=files: decode(files, None, None), args.repeats)
                finally:
                    source.workers = original
                rows.append((name, f"decode/{threads}", n, t))
            cache = Path(os.environ["REPLAB_CACHE"])

            def first_load(root=root, cache=cache) -> None:
                for path in cache.rglob("*.pt"):
                    path.unlink()
                load_splits("image_folder", root=str(root))

            rows.append((name, "first load", n, best(first_load, args.repeats)))
            rows.append(
                (
                    name,
                    "cached load",
                    n,
                    best(lambda root=root: load_splits("image_folder", root=str(root)), 3),
                )
            )
    print(f"{'set':<13}{'step':<14}{'images':>8}{'seconds':>10}{'images/s':>12}  disturbed")
    for name, step, n, t in rows:
        print(
            f"{name:<13}{step:<14}{n:>8,}{t.seconds:>10.3f}{n / t.seconds:>12,.0f}  "
            f"{'YES' if t.disturbed else 'no'}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "environment": environment(threads=torch.get_num_threads()),
                    "results": [
                        {
                            "set": name,
                            "step": step,
                            "images": n,
                            "seconds": t.seconds,
                            "images_per_s": n / t.seconds,
                            "disturbed": t.disturbed,
                        }
                        for name, step, n, t in rows
                    ],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
