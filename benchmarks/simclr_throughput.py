"""SimCLR (study A3) training throughput: augmented views per second, and augmentation's share.

Builds the A3 task from the bundled recipe ``a3-cifar10-simclr`` (ResNet-18 with the CIFAR
stem, projection 512-512-128, NT-Xent, Adam, batch 256, replab's on-device ``Augment``
pipeline) plus any ``--set`` overrides, and trains it on CIFAR-10 images resident on the
device (``DeviceLoader``), under each configuration of ``--configs``:

- ``eager``: fp32, default (NCHW) memory format, no compile;
- ``bf16``: replab's bf16 autocast (CUDA only: replab leaves autocast off on CPU);
- ``cl``: model weights in ``channels_last``;
- ``compile``: ``torch.compile`` of the model (its compile time is reported apart, as the
  first warm-up step's excess over a steady step).

Combine with ``+``: ``bf16+cl+compile``. For each it reports the full training step
(two views, forward, NT-Xent, backward, optimizer) in s/step and augmented views/s
(2 x batch per step), and the time of making the two views alone (same batches, same
autocast) as a share of the step. GPU timings synchronise before and after each timed span.

Targets (issue 8, one H100): >= 25,000 views/s; augmentation <= 15% of the step.

Run from the repository root::

    .venv/bin/python benchmarks/simclr_throughput.py --device cuda            # the GPU table
    .venv/bin/python benchmarks/simclr_throughput.py --quick --steps 3         # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    RESULTS,
    add_machine_args,
    data_overrides,
    disturbed_warning,
    environment,
    synchronizer,
    timed,
    use_threads,
)
from studies import Steps  # noqa: E402

from replab.recipes import load_spec  # noqa: E402
from replab.runs.prepare import initial_task, load_data, loaders  # noqa: E402
from replab.training import resolve_device, seed_everything  # noqa: E402
from replab.training.device import autocast  # noqa: E402
from replab.training.optimizers import build_optimizer  # noqa: E402

RECIPE = "a3-cifar10-simclr"
QUICK = ["model.encoder.width=8", "trainer.batch_size=128"]
VIEWS_TARGET = 25_000
AUG_SHARE_TARGET = 0.15
OPTIONS = ("eager", "bf16", "cl", "compile")


def run_config(config: str, spec, splits, normalizer, device, args) -> dict:
    opts = set(config.split("+")) - {"eager"}
    if opts - set(OPTIONS):
        raise SystemExit(f"unknown option in {config!r}; combine {', '.join(OPTIONS[1:])} with +")
    amp = "bf16" if "bf16" in opts else "off"
    task = initial_task(spec, splits.train.shape, len(splits.train.classes))
    task.model.to(device)
    if "cl" in opts:
        task.model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(task.model, spec.trainer.optimizer, device)
    if "compile" in opts:
        task.model = torch.compile(task.model)
    train, _, _ = loaders(
        spec, splits, normalizer, device, spec.trainer.batch_size, spec.trainer.eval_batch_size
    )
    sync = synchronizer(device)
    task.train_mode()

    def step(x, y):
        with autocast(device, amp):
            loss = task.step(x, y)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def augment_only(x, y):
        with torch.no_grad(), autocast(device, amp):
            task.augment(x), task.augment(x)

    def timed_steps(fn, n):
        batches = Steps(train, n, args.budget)
        with timed(sync) as t:
            for x, y in batches:
                fn(x, y)
        return t, batches

    first, _ = timed_steps(step, 1)  # includes torch.compile's tracing and code generation
    timed_steps(step, max(args.warmup - 1, 0))
    full, batches = timed_steps(step, args.steps)
    aug, aug_batches = timed_steps(augment_only, args.steps)
    s_step = full.seconds / batches.steps
    s_aug = aug.seconds / aug_batches.steps
    views = 2 * batches.samples / full.seconds
    row = {
        "config": config,
        "amp": amp,
        "channels_last": "cl" in opts,
        "compile": "compile" in opts,
        "steps": batches.steps,
        "s_per_step": s_step,
        "views_per_s": views,
        "augment_s_per_step": s_aug,
        "augment_share": s_aug / s_step,
        "first_step_s": first.seconds,
        "compile_s": max(0.0, first.seconds - s_step) if "compile" in opts else None,
        "cpu_used_elsewhere": max(full.other_share, aug.other_share),
        "disturbed": full.disturbed or aug.disturbed,
    }
    compiled = f"  compile {row['compile_s']:.1f} s" if row["compile"] else ""
    print(
        f"  {config:<20} {s_step:8.4f} s/step {views:10,.0f} views/s  augment {s_aug:.4f} s "
        f"({row['augment_share']:.0%}){compiled}"
        f"  ({row['cpu_used_elsewhere']:.0%} "
        f"busy elsewhere{', DISTURBED' if row['disturbed'] else ''})",
        flush=True,
    )
    return row


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--configs",
        default=None,
        help="comma-separated; default eager,bf16,bf16+cl,bf16+cl+compile on CUDA, eager,cl on CPU",
    )
    parser.add_argument(
        "--steps", type=int, default=30, help="timed steps per configuration (default 30)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="untimed steps first, the first one timed apart (default 5)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop a timing after this many seconds (>= 3 steps; default 60)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"small model for a CPU smoke run: {' '.join(QUICK)}"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe overrides, e.g. trainer.batch_size=512",
    )
    add_machine_args(parser)
    parser.add_argument(
        "--json", type=Path, default=None, help="default benchmarks/results/simclr-<device>.json"
    )
    args = parser.parse_args(argv)
    cuda = torch.device(args.device).type == "cuda"
    args.configs = (
        args.configs or ("eager,bf16,bf16+cl,bf16+cl+compile" if cuda else "eager,cl")
    ).split(",")
    args.json = args.json or RESULTS / f"simclr-{torch.device(args.device).type}.json"
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    use_threads(args.threads)
    overrides = [
        *(QUICK if args.quick else []),
        *args.set,
        *data_overrides(args.data_dir, args.device),
    ]
    spec = load_spec(RECIPE, overrides)
    seed_everything(spec.seed, spec.trainer.deterministic)
    device = resolve_device(args.device)
    splits, normalizer = load_data(spec)
    env = environment(
        device=args.device,
        steps=args.steps,
        warmup=args.warmup,
        overrides=overrides,
        batch_size=spec.trainer.batch_size,
    )
    print(
        f"SimCLR throughput | {RECIPE} "
        f"{' '.join(args.set + (QUICK if args.quick else []))} | batch {spec.trainer.batch_size} | "
        f"{env['gpu'] or env['cpu']} | {splits.train.source}"
    )
    rows = []
    for config in args.configs:
        if "bf16" in config and device.type != "cuda":
            print(
                f"  {config:<20} skipped: "
                "replab's bf16 autocast is CUDA-only (measured slower on CPU)"
            )
            continue
        rows.append(run_config(config, spec, splits, normalizer, device, args))
    best = max(rows, key=lambda r: r["views_per_s"])
    verdict = {
        "views_per_s": best["views_per_s"] >= VIEWS_TARGET,
        "augment_share": best["augment_share"] <= AUG_SHARE_TARGET,
    }
    print(
        f"\nbest: {best['config']}: "
        f"{best['views_per_s']:,.0f} views/s (target >= {VIEWS_TARGET:,} on one H100) "
        f"{'PASS' if verdict['views_per_s'] else 'FAIL'}; "
        f"augmentation {best['augment_share']:.0%} of the step "
        f"(target <= {AUG_SHARE_TARGET:.0%}) {'PASS' if verdict['augment_share'] else 'FAIL'}"
    )
    warning = disturbed_warning([r["config"] for r in rows if r["disturbed"]])
    if warning:
        print(warning)
    env["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "environment": env,
                "recipe": RECIPE,
                "data": splits.train.source,
                "results": rows,
                "best": best["config"],
                "targets": {"views_per_s": VIEWS_TARGET, "augment_share": AUG_SHARE_TARGET},
                "passed": verdict,
                "disturbed": any(r["disturbed"] for r in rows),
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
