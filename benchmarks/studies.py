"""Each study's main training, timed three ways in one process: replab, a reference-style
loop, and the compute floor.

For every chosen study the model, objective, task, optimizer, batch size and data are built
from the bundled recipe (``replab.recipes.load_spec`` + ``replab.tasks.build_task``, plus any
``--set`` overrides), so the benchmark measures exactly what ``replab run`` trains:

- ``replab``: the real ``Trainer._train_epoch`` (``DeviceLoader`` batches, ``task.step``
  under replab's autocast, backward, the optimizer replab builds, per-step metric sums and
  the end-of-epoch divergence check), driven for a fixed number of steps.
- ``reference``: the way the reference reports train: a torchvision dataset (``MNIST``,
  ``FashionMNIST``, or CIFAR-10's python batches read item by item through PIL like
  ``torchvision.datasets.CIFAR10``) with per-item ``ToTensor`` (+ ``Normalize`` where the
  recipe standardises, + torchvision's random augmentations making two views for SimCLR),
  ``torch.utils.data.DataLoader`` (shuffle, ``--workers``), ``.to(device)`` and
  ``loss.item()`` every step; same model (same seed), same batch size, same optimizer class
  and settings, in torch's default implementation (replab builds the fused one).
- ``floor``: the same forward/backward/optimizer step on one resident random batch, no data
  handling at all (for SimCLR, the two views are resident too, so the floor excludes the
  on-device augmentation that ``replab`` pays for).

Each method is warmed up (``--warmup`` steps; the time, which includes any
``torch.compile``, is reported apart), then timed over ``--steps`` steps (or until
``--budget`` seconds have passed, at least 3 steps), ``--repeats`` rounds with the methods
taking turns, and the best of each kept. Epoch
times are extrapolated from samples/s over the training split found here (for CIFAR-10 on
these machines, the cifar10-mini subset: ``epoch_images`` says how many).

Run from the repository root::

    .venv/bin/python benchmarks/studies.py [--studies a1,c1] [--device cpu|cuda] [--steps 50]
        [--amp auto|off|bf16] [--channels-last] [--compile] [--quick] [--set [STUDY:]KEY=VALUE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    RESULTS,
    add_machine_args,
    data_overrides,
    disturbed_warning,
    environment,
    stage_torchvision_raw,
    synchronizer,
    timed,
    use_threads,
)

from replab.data import DATASETS  # noqa: E402
from replab.recipes import load_spec  # noqa: E402
from replab.runs.prepare import initial_task, load_data, loaders  # noqa: E402
from replab.spec import ExperimentSpec  # noqa: E402
from replab.studies import study_a, study_f  # noqa: E402
from replab.training import Trainer, resolve_device, seed_everything  # noqa: E402
from replab.training.device import autocast  # noqa: E402
from replab.training.optimizers import build_optimizer  # noqa: E402


def _model_and_batch(overrides: list[str]) -> list[str]:
    """The parts of a study's quick profile that change the per-step work (model size, batch)."""
    return [o for o in overrides if o.startswith(("model.", "trainer.batch_size="))]


@dataclass(frozen=True)
class Study:
    recipe: str
    mlp: bool = False  # the ">= 3x faster than the reference-style loop" target applies
    quick: tuple[str, ...] = ()  # --quick: the study's quick-profile model/batch overrides


STUDIES = {
    "a1": Study("a1-mnist-autoencoder", mlp=True),
    "a3": Study("a3-cifar10-simclr", quick=tuple(_model_and_batch(study_a.QUICK["cifar10"]["A3"]))),
    "b1": Study("b1-mnist-bottleneck", mlp=True),
    "c1": Study("c1-cifar10-cnn"),
    "d3": Study("d3-cifar10-autoencoder", mlp=True),
    "e1": Study("e1-fashion-autoencoder"),
    "f2": Study("f2-cifar10-triplet", quick=tuple(_model_and_batch(study_f.QUICK_F2))),
}
FLOOR_TARGET = 1.25  # replab's time per sample <= 1.25x the compute floor's
REFERENCE_TARGET = 3.0  # MLP studies: the reference-style loop takes >= 3x replab's time per sample
MIN_STEPS = 3


# --- one timed method -----------------------------------------------------------------------


class Steps:
    """The first ``n`` batches of ``loader`` (cycling through epochs), stopping early once
    ``budget`` seconds have passed and at least MIN_STEPS were taken; counts what it yielded."""

    def __init__(self, loader, n: int, budget: float | None = None) -> None:
        self.loader, self.n, self.budget = loader, n, budget
        self.steps = self.samples = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator:
        import time

        start = time.perf_counter()
        while True:
            for batch in self.loader:
                over = (
                    self.budget is not None
                    and self.steps >= MIN_STEPS
                    and time.perf_counter() - start > self.budget
                )
                if self.steps >= self.n or over:
                    return
                self.steps += 1
                self.samples += len(batch[1])
                yield batch


Runner = Callable[[int, float | None], tuple[int, int]]  # (steps, budget) -> (steps, samples) taken


def measure(
    methods: dict[str, Runner], args: argparse.Namespace, device: torch.device, epoch_images: int
) -> list[dict]:
    """Warm every method up, then time them in turns, ``--repeats`` rounds, the best of each kept.

    Taking the methods in turns rather than one after another spreads slow phases of a shared
    machine (another VM's load, frequency changes) over all of them instead of one method."""
    sync = synchronizer(device)
    warmups, timings = {}, {label: [] for label in methods}
    for label, run in methods.items():
        with timed(sync) as warm:
            if args.warmup > 0:  # an epoch of zero steps has no loss to check
                run(args.warmup, None)
        warmups[label] = warm.seconds
    for _ in range(args.repeats):
        for label, run in methods.items():
            with timed(sync) as t:
                steps, samples = run(args.steps, args.budget)
            timings[label].append((t.seconds / samples, t, steps, samples))
    return [_row(label, timings[label], warmups[label], epoch_images) for label in methods]


def _row(label: str, timings: list, warmup_s: float, epoch_images: int) -> dict:
    per_sample, best, steps, samples = min(timings, key=lambda r: r[0])
    row = {
        "method": label,
        "s_per_step": best.seconds / steps,
        "samples_per_s": 1 / per_sample,
        "steps": steps,
        "samples": samples,
        "s_per_epoch": epoch_images * per_sample,
        "warmup_s": warmup_s,
        "all_s_per_sample": [r[0] for r in timings],
        "cpu_used_elsewhere": best.other_share,
        "disturbed": best.disturbed,
    }
    print(
        f"    {label:<12} {row['s_per_step']:8.4f} s/step  {row['samples_per_s']:9,.0f} samples/s  "
        f"(warm-up {warmup_s:.1f} s, "
        f"{best.other_share:.0%} busy elsewhere{', DISTURBED' if best.disturbed else ''})",
        flush=True,
    )
    return row


# --- the three ways -------------------------------------------------------------------------


def fresh_task(spec: ExperimentSpec, shape, num_classes: int, device: torch.device, args):
    """The task with the run's initial weights, on ``device``, in the layout asked for."""
    task = initial_task(spec, shape, num_classes)
    task.model.to(device)
    if args.channels_last:
        task.model.to(memory_format=torch.channels_last)
    return task


def replab_runner(spec: ExperimentSpec, splits, normalizer, device, args) -> Runner:
    task = fresh_task(spec, splits.train.shape, len(splits.train.classes), device, args)
    train, val, _ = loaders(
        spec, splits, normalizer, device, spec.trainer.batch_size, spec.trainer.eval_batch_size
    )
    # compiles the model when trainer.compile is set
    trainer = Trainer(task, spec.trainer, train, val, device)

    def run(n: int, budget: float | None) -> tuple[int, int]:
        trainer.train = Steps(train, n, budget)
        trainer._train_epoch(1)  # ends with .item() on the stacked losses: the GPU queue is drained
        return trainer.train.steps, trainer.train.samples

    return run


def train_step(task, optimizer, device, amp: str, views: bool) -> Callable:
    """forward (task.step, or for SimCLR views the model + objective), backward, optimizer step."""

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            if views:
                z1, z2 = task.model(x).chunk(2)
                loss = task.objective(z1, z2)
            else:
                loss = task.step(x, y)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _compiled(task, args):
    if args.compile:
        task.model = torch.compile(task.model)
    return task


def floor_runner(spec: ExperimentSpec, splits, normalizer, device, args) -> Runner:
    task = _compiled(
        fresh_task(spec, splits.train.shape, len(splits.train.classes), device, args), args
    )
    optimizer = build_optimizer(task.model, spec.trainer.optimizer, device)
    bs, shape, views = spec.trainer.batch_size, splits.train.shape, spec.task.name == "contrastive"
    generator = torch.Generator().manual_seed(0)
    x = normalizer(
        torch.randint(
            0, 256, (2 * bs if views else bs, *shape), dtype=torch.uint8, generator=generator
        )
    ).to(device)
    y = torch.randint(0, len(splits.train.classes), (bs,), generator=generator).to(device)
    step = train_step(task, optimizer, device, spec.trainer.amp, views)

    def run(n: int, budget: float | None) -> tuple[int, int]:
        task.train_mode()
        batches = Steps([(x, y)], n, budget)
        for xb, yb in batches:
            loss = step(xb, yb)
        loss.item()
        return batches.steps, batches.samples

    return run


class CifarBatches(torch.utils.data.Dataset):
    """``torchvision.datasets.CIFAR10``'s item path over the same python batches.

    torchvision's class refuses cifar10-mini (its md5 checks are of the published files, and
    these were re-pickled), so this holds the same N x 32 x 32 x 3 uint8 array and does what
    its ``__getitem__`` does: ``Image.fromarray`` per image, then the transform.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


class TwoViews:
    def __init__(self, transform) -> None:
        self.transform = transform

    def __call__(self, image):
        return torch.cat([self.transform(image)[None], self.transform(image)[None]])


def torchvision_augment(spec: ExperimentSpec, size: int) -> list:
    """The recipe's on-device augmentations, as the per-item torchvision transforms they mirror."""
    out = []
    for c in spec.augment:
        p = c.params
        if c.name == "random_resized_crop":
            out.append(
                T.RandomResizedCrop(
                    size,
                    scale=tuple(p.get("scale", (0.08, 1.0))),
                    ratio=tuple(p.get("ratio", (3 / 4, 4 / 3))),
                    antialias=True,
                )
            )
        elif c.name == "horizontal_flip":
            out.append(T.RandomHorizontalFlip(p.get("p", 0.5)))
        elif c.name == "color_jitter":
            jitter = T.ColorJitter(
                p.get("brightness", 0.4),
                p.get("contrast", 0.4),
                p.get("saturation", 0.4),
                p.get("hue", 0.1),
            )
            out.append(T.RandomApply([jitter], p=p.get("p", 0.8)))
        elif c.name == "grayscale":
            out.append(T.RandomGrayscale(p.get("p", 0.2)))
        else:
            raise SystemExit(f"no torchvision equivalent for augmentation {c.name!r}")
    return out


def reference_dataset(spec: ExperimentSpec, splits, normalizer, data_dir: Path, staging: Path):
    to_tensor = [T.ToTensor()]
    if normalizer.mean is not None:
        to_tensor.append(
            T.Normalize(normalizer.mean.flatten().tolist(), normalizer.std.flatten().tolist())
        )
    views = spec.task.name == "contrastive"
    transform = T.Compose(
        [*(torchvision_augment(spec, splits.train.shape[-1]) if views else []), *to_tensor]
    )
    transform = TwoViews(transform) if views else transform
    dataset = spec.data.dataset
    if dataset in ("mnist", "fashion_mnist"):
        name, cls = (
            ("MNIST", torchvision.datasets.MNIST)
            if dataset == "mnist"
            else ("FashionMNIST", torchvision.datasets.FashionMNIST)
        )
        if not (staging / name).is_dir():
            stage_torchvision_raw(DATASETS.get(dataset)().locate(data_dir), staging, name)
        return cls(str(staging), train=True, download=False, transform=transform), views
    if dataset == "cifar10":
        return CifarBatches(splits.train.images, splits.train.labels, transform), views
    raise SystemExit(f"no reference-style loader for dataset {dataset!r}")


def torch_default_optimizer(model, spec: ExperimentSpec, device) -> torch.optim.Optimizer:
    """The recipe's optimizer as a notebook writes it: the same class, groups and settings,
    in torch's default implementation (replab asks for the fused kernels)."""
    built = build_optimizer(model, spec.trainer.optimizer, device)
    return type(built)([{**group, "fused": None} for group in built.param_groups])


def reference_runner(
    spec: ExperimentSpec,
    splits,
    normalizer,
    device,
    args,
    data_dir: Path,
    staging: Path,
    workers: int,
) -> Runner:
    dataset, views = reference_dataset(spec, splits, normalizer, data_dir, staging)
    task = _compiled(
        fresh_task(spec, splits.train.shape, len(splits.train.classes), device, args), args
    )
    step = train_step(
        task, torch_default_optimizer(task.model, spec, device), device, spec.trainer.amp, views
    )
    # Workers persist across the timed steps: their start-up (paid every epoch by a plain
    # DataLoader) is left out, which favours the reference.
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=spec.trainer.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    stream = iter(())

    def batches() -> Iterator:
        nonlocal stream
        while True:
            yield from stream
            stream = iter(loader)

    def run(n: int, budget: float | None) -> tuple[int, int]:
        task.train_mode()
        counted = Steps(_Once(batches()), n, budget)
        for x, y in counted:
            if views:
                # (B, 2, C, H, W) -> all first views, then all second views
                x = x.transpose(0, 1).flatten(0, 1)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = step(x, y)
            loss.item()  # the reference scripts log the running loss every step
        return counted.steps, counted.samples

    return run


class _Once:
    """An endless iterator presented as an iterable Steps can draw from."""

    def __init__(self, it: Iterator) -> None:
        self.it = it

    def __iter__(self) -> Iterator:
        return self.it


# --- a study ------------------------------------------------------------------------------


def study_spec(key: str, args: argparse.Namespace) -> ExperimentSpec:
    study = STUDIES[key]
    overrides = [*(study.quick if args.quick else ())]
    for item in args.set:
        head, _, rest = item.partition("=")
        target, colon, k = head.rpartition(":")
        if not colon:
            overrides.append(item)
        elif target == key:
            overrides.append(f"{k}={rest}")
    forced = [
        *data_overrides(args.data_dir, args.device),
        "trainer.progress=false",
        f"trainer.amp={args.amp}",
        f"trainer.compile={str(args.compile).lower()}",
    ]
    return load_spec(study.recipe, [*overrides, *forced])


def run_study(key: str, args: argparse.Namespace, staging: Path) -> dict:
    spec = study_spec(key, args)
    # as a run does: deterministic algorithms where asked
    seed_everything(spec.seed, spec.trainer.deterministic)
    device = resolve_device(args.device)
    splits, normalizer = load_data(spec)
    epoch_images = len(splits.train)
    print(
        f"\n{key}: {spec.name} | {splits.train.source} "
        f"| batch {spec.trainer.batch_size} | {epoch_images:,} train images",
        flush=True,
    )
    methods, workers_of = {"replab": replab_runner(spec, splits, normalizer, device, args)}, {}
    for workers in args.workers:
        label = "reference" if len(args.workers) == 1 else f"reference/w{workers}"
        methods[label], workers_of[label] = (
            reference_runner(
                spec, splits, normalizer, device, args, args.data_dir, staging, workers
            ),
            workers,
        )
    methods["floor"] = floor_runner(spec, splits, normalizer, device, args)
    rows = [
        {**row, "num_workers": workers_of[row["method"]]} if row["method"] in workers_of else row
        for row in measure(methods, args, device, epoch_images)
    ]
    return summarise(key, spec, splits, rows, epoch_images)


def summarise(key: str, spec: ExperimentSpec, splits, rows: list[dict], epoch_images: int) -> dict:
    by = {r["method"]: r for r in rows}
    replab, floor = by["replab"], by["floor"]
    reference = min(
        (r for r in rows if r["method"].startswith("reference")),
        key=lambda r: 1 / r["samples_per_s"],
    )
    ratios = {
        "replab / floor": floor["samples_per_s"] / replab["samples_per_s"],
        "reference / replab": replab["samples_per_s"] / reference["samples_per_s"],
    }
    targets = {"replab / floor": ("<=", FLOOR_TARGET)}
    if STUDIES[key].mlp:
        targets["reference / replab"] = (">=", REFERENCE_TARGET)
    passed = {
        k: (ratios[k] <= t if op == "<=" else ratios[k] >= t) for k, (op, t) in targets.items()
    }
    return {
        "study": key,
        "recipe": STUDIES[key].recipe,
        "name": spec.name,
        "data": splits.train.source,
        "epoch_images": epoch_images,
        "batch_size": spec.trainer.batch_size,
        "spec": spec.model_dump(mode="json"),
        "results": rows,
        "reference_figure": reference["method"],
        "ratios": ratios,
        "targets": targets,
        "passed": passed,
        # a verdict rests on three timings; a slower reference's own
        # loader workers do not touch them
        "disturbed": any(r["disturbed"] for r in (replab, floor, reference)),
    }


def print_table(studies: list[dict]) -> None:
    print(
        f"\n{'study':<6}{'method':<14}{'s/step':>9}"
        f"{'samples/s':>11}{'s/epoch':>9}{'epoch imgs':>11}  {'vs floor':>8}  disturbed"
    )
    for s in studies:
        floor = next(r for r in s["results"] if r["method"] == "floor")["samples_per_s"]
        for r in s["results"]:
            print(
                f"{s['study']:<6}{r['method']:<14}{r['s_per_step']:>9.4f}{r['samples_per_s']:>11,.0f}{r['s_per_epoch']:>9.2f}"
                f"{s['epoch_images']:>11,} "
                f" {floor / r['samples_per_s']:>7.2f}x  {'YES' if r['disturbed'] else 'no'}"
            )
    print(
        f"\n{'study':<6}{'replab/floor':>13}{'target':>9}{'':>6}{'ref/replab':>12}{'target':>9}{'':>6}"
    )
    for s in studies:
        cells = []
        for key in ("replab / floor", "reference / replab"):
            value = s["ratios"][key]
            if key in s["targets"]:
                op, t = s["targets"][key]
                verdict = ("PASS" if s["passed"][key] else "FAIL") + ("*" if s["disturbed"] else "")
                cells.append(f"{value:>11.2f}x{op:>5} {t:<4}{verdict:>6}")
            else:
                cells.append(f"{value:>11.2f}x{'-':>9}{'':>6}")
        print(f"{s['study']:<6}{cells[0]:>28}{cells[1]:>29}")
    warning = disturbed_warning(
        [f"{s['study']}:{r['method']}" for s in studies for r in s["results"] if r["disturbed"]]
    )
    if warning:
        print(f"\n{warning}\n(* a verdict taken while disturbed)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--studies",
        default=",".join(STUDIES),
        help=f"comma-separated, from {','.join(STUDIES)} (default: all)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per method (default 50)")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop a timing after this many seconds (>= 3 steps; default 60)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="untimed steps first (default 5; includes torch.compile)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="timings per method, the best kept (default 1)"
    )
    parser.add_argument(
        "--workers",
        default="0",
        help=(
            "DataLoader num_workers for the reference, "
            "comma-separated; the fastest is its figure (default 0)"
        ),
    )
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "off", "bf16", "fp16"],
        help="trainer.amp for every method (auto: bf16 on CUDA, off on CPU)",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="every method's model in channels_last memory format",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile every method's model (compile time lands in warmup_s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the studies' quick-profile model/batch sizes (A3 ResNet width 8, F2 VGG width 1/8)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[STUDY:]KEY=VALUE",
        help="recipe override for every study, or one (a3:model.encoder.width=16)",
    )
    add_machine_args(parser)
    parser.add_argument(
        "--json", type=Path, default=None, help="default benchmarks/results/studies-<device>.json"
    )
    args = parser.parse_args(argv)
    args.studies = [s.strip() for s in args.studies.split(",") if s.strip()]
    unknown = [s for s in args.studies if s not in STUDIES]
    if unknown:
        parser.error(f"unknown studies {unknown}; choose from {','.join(STUDIES)}")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.data_dir = args.data_dir.expanduser().resolve()
    args.json = args.json or RESULTS / f"studies-{torch.device(args.device).type}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    use_threads(args.threads)
    env = environment(
        device=args.device,
        steps=args.steps,
        budget=args.budget,
        warmup=args.warmup,
        repeats=args.repeats,
        workers=args.workers,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        quick=args.quick,
        overrides=args.set,
    )
    print(
        "replab studies benchmark "
        f"| torch {env['torch']} | {env['threads']} threads | {env['gpu'] or env['cpu']}"
    )
    if args.channels_last and torch.device(args.device).type == "cpu" and "f2" in args.studies:
        print(
            "WARNING: channels_last F2 "
            "(VGG-16-BN) on CPU computes different gradients in torch 2.14.1 "
            "(tests/benchmarks/test_optimized_paths.py, "
            "xfail); its timing is not of the same computation"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="replab_bench_") as tmp:
        for key in args.studies:
            results.append(run_study(key, args, Path(tmp)))
    print_table(results)
    env["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "environment": env,
                "studies": results,
                "disturbed": any(s["disturbed"] for s in results),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
