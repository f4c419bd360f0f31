"""What watching a latent space costs (issue 31): the monitors against an epoch of the A3
recipe on MNIST, and the label-efficiency curve of one run.

1. Monitors. The A3 recipe (SimCLR, MNIST) runs for ``--epochs`` epochs with monitors on and
   again with them off, one run at a time, no probe, no analysis. From the run with monitors:
   ``timings.monitor`` (seconds measuring, every epoch); from the run without: the epochs'
   seconds. The share is monitor seconds per epoch over an epoch's seconds (target: 10%).
2. The curve. MNIST's train and test splits through a freshly initialised A3 encoder
   (latents of 128 dimensions; the time does not depend on the weights), then the curve at
   the default shots and draws, on the latents and on the raw pixels, each timed (target:
   15 s for one run).

Run from the repository root on an idle machine::

    .venv/bin/python benchmarks/monitors.py --epochs 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    RESULTS,
    add_machine_args,
    disturbed_warning,
    environment,
    timed,
    use_threads,
)

from replab.data import Normalizer, load_splits  # noqa: E402
from replab.evaluation import embed  # noqa: E402
from replab.evaluation.label_efficiency import SHOTS, label_curves  # noqa: E402
from replab.recipes import load_spec  # noqa: E402
from replab.runs.prepare import initial_task  # noqa: E402

RECIPE = "a3-mnist-simclr"
MONITOR_TARGET, CURVE_TARGET = 0.10, 15.0


def a3_run(data_dir: Path, epochs: int, monitor: bool, work: Path) -> dict:
    """One A3 run, training only; its summary and its epoch records."""
    runs = Path(tempfile.mkdtemp(dir=work))
    cmd = [
        sys.executable,
        "-m",
        "replab.cli",
        "run",
        RECIPE,
        f"trainer.epochs={epochs}",
        "trainer.early_stopping=null",
        "probe.enabled=false",
        "analysis.enabled=false",
        f"monitor.enabled={str(monitor).lower()}",
        f"data.root={data_dir}",
        "--runs-dir",
        str(runs),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    (folder,) = runs.iterdir()
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return {"summary": json.loads((folder / "summary.json").read_text()), "history": history}


def epoch_seconds(history: list[dict]) -> float:
    """The mean epoch's seconds (``seconds`` is cumulative from the start of training)."""
    return history[-1]["seconds"] / len(history)


def monitors(data_dir: Path, epochs: int, work: Path) -> tuple[dict, list[str]]:
    disturbed = []
    with timed() as t_on:
        on = a3_run(data_dir, epochs, True, work)
    with timed() as t_off:
        off = a3_run(data_dir, epochs, False, work)
    disturbed += ["the A3 run with monitors"] if t_on.disturbed else []
    disturbed += ["the A3 run without"] if t_off.disturbed else []
    per_epoch = on["summary"]["timings"]["monitor"] / epochs
    epoch = epoch_seconds(off["history"])
    return {
        "epochs": epochs,
        "epoch_s_without": epoch,
        "epoch_s_with": epoch_seconds(on["history"]),
        "monitor_s_per_epoch": per_epoch,
        "share": per_epoch / epoch,
        "val_knn": [r["val_knn"] for r in on["history"]],
        "val_rank": [r["val_rank"] for r in on["history"]],
    }, disturbed


def curve(data_dir: Path) -> tuple[dict, list[str]]:
    spec = load_spec(RECIPE, [f"data.root={data_dir}"])
    splits = load_splits("mnist", root=str(data_dir), val_fraction=spec.data.val_fraction)
    encoder = initial_task(spec, splits.train.shape, len(splits.train.classes)).encoder
    z = {
        n: embed(encoder, getattr(splits, n).images, Normalizer(), torch.device("cpu"))
        for n in ("train", "test")
    }
    flat = {n: getattr(splits, n).images.flatten(1).float() for n in ("train", "test")}
    used = flat["train"].std(0) > 0
    out, disturbed = {}, []
    for name, (train, test) in {
        "latents": (z["train"], z["test"]),
        "pixels": (flat["train"][:, used], flat["test"][:, used]),
    }.items():
        with timed() as t:
            c = label_curves(
                train, splits.train.labels, test, splits.test.labels, list(SHOTS), 5, 0
            )
        disturbed += [f"the {name}' curve"] if t.disturbed else []
        out[name] = {
            "seconds": t.seconds,
            "dims": int(train.shape[1]),
            "linear": {k: round(c.linear.mean(k), 4) for k in SHOTS},
            "knn": {k: round(c.knn.mean(k), 4) for k in SHOTS},
        }
    return out, disturbed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    use_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        mon, d1 = monitors(args.data_dir, args.epochs, Path(work))
    cur, d2 = curve(args.data_dir)
    print(f"A3 (SimCLR, MNIST) epoch without monitors: {mon['epoch_s_without']:.1f} s")
    print(f"A3 epoch with monitors:                    {mon['epoch_s_with']:.1f} s")
    print(
        f"monitors per epoch: {mon['monitor_s_per_epoch']:.2f} s = {mon['share']:.1%} of an "
        f"epoch (target {MONITOR_TARGET:.0%})"
    )
    total = sum(c["seconds"] for c in cur.values())
    for name, c in cur.items():
        print(f"label curve, {name} ({c['dims']} dims): {c['seconds']:.1f} s")
    print(f"label curve of one run (latents + pixels): {total:.1f} s (target {CURVE_TARGET:g} s)")
    if warning := disturbed_warning(d1 + d2):
        print(warning)
    RESULTS.mkdir(exist_ok=True)
    record = {"environment": environment(), "monitors": mon, "curve": cur, "disturbed": d1 + d2}
    (RESULTS / "monitors.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
