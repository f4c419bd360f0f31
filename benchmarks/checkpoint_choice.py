"""Which checkpoint a self-supervised run should keep: chosen by validation loss or by the kNN
monitor? (issue 31)

Each recipe trains a fixed number of epochs with no early stopping. After every epoch a hook
measures the truth on data no criterion sees: the cosine kNN-20 accuracy of the whole test
split against the whole train split, and a logistic probe on 100 labels per class (one
seeded draw) scored on the test split. Then each criterion replays early stopping over the
recorded epochs, with the recipe's own patience and min_delta: ``val_loss`` (min, what the
recipes use today) and ``val_knn`` (max, the monitor's val sample). The table gives the epoch
each picks and the truth there, beside the last epoch and the best epoch in hindsight.

Run from the repository root on an idle machine (each recipe about 5 minutes at 12
epochs)::

    .venv/bin/python benchmarks/checkpoint_choice.py --epochs 12
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import RESULTS, add_machine_args, environment, use_threads  # noqa: E402

from replab.data import load_splits  # noqa: E402
from replab.evaluation import embed, knn_accuracy  # noqa: E402
from replab.evaluation.label_efficiency import label_curves  # noqa: E402
from replab.io import read_jsonl  # noqa: E402
from replab.recipes import load_spec  # noqa: E402
from replab.runs.lifecycle import run_experiment  # noqa: E402
from replab.runs.prepare import load_data  # noqa: E402
from replab.training.early_stopping import EarlyStopping  # noqa: E402

RECIPES = ("a3-mnist-simclr", "a3-mnist-moco")


def truth_hook(spec, truth: dict):
    """An epoch hook recording the test kNN-20 and the 100-labels logistic probe."""
    splits, normalizer = load_data(spec)

    def hook(trainer, record: dict) -> None:
        z = {
            n: embed(trainer.task.encoder, getattr(splits, n).images, normalizer, trainer.device)
            for n in ("train", "test")
        }
        y_train, y_test = splits.train.labels, splits.test.labels
        curve = label_curves(z["train"], y_train, z["test"], y_test, [100], 1, spec.seed)
        truth[record["epoch"]] = {
            "knn": knn_accuracy(z["train"], y_train, z["test"], y_test, 20, "cosine"),
            "linear100": curve.linear.mean(100),
        }

    return hook


def replay(history: list[dict], monitor: str, mode: str, patience: int, delta: float) -> int:
    """The epoch early stopping on ``monitor`` keeps, replayed over the recorded epochs."""
    stopper = EarlyStopping(monitor, mode, patience, delta)
    for r in history:
        stopper.update(r[monitor], r["epoch"])
        if stopper.should_stop:
            break
    return stopper.best_epoch


def one(recipe: str, epochs: int, data_dir: Path, work: Path, extra: list[str]) -> dict:
    spec = load_spec(
        recipe,
        [
            *extra,
            f"trainer.epochs={epochs}",
            "trainer.early_stopping=null",
            "trainer.keep=last",
            "probe.enabled=false",
            "analysis.enabled=false",
            f"data.root={data_dir}",
        ],
    )
    own = load_spec(recipe).trainer.early_stopping
    patience, delta = (own.patience, own.min_delta) if own else (3, 0.0)
    truth: dict[int, dict] = {}
    result = run_experiment(spec, work, log=lambda _: None, hooks=[truth_hook(spec, truth)])
    history = read_jsonl(result.run_dir / "metrics.jsonl")
    picks = {
        "val_loss": replay(history, "val_loss", "min", patience, delta),
        "val_knn": replay(history, "val_knn", "max", patience, 0.0),
        "last": epochs,
        "hindsight (test kNN)": max(truth, key=lambda e: truth[e]["knn"]),
    }
    return {
        "recipe": recipe,
        "patience": patience,
        "picks": {k: {"epoch": e, **truth[e]} for k, e in picks.items()},
        "epochs": [
            {
                "epoch": r["epoch"],
                "val_loss": r["val_loss"],
                "val_knn": r["val_knn"],
                **truth[r["epoch"]],
            }
            for r in history
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--limit-train", type=int, default=None, help="a smaller train split")
    args = parser.parse_args()
    use_threads(args.threads)
    torch.manual_seed(0)
    load_splits("mnist", root=str(args.data_dir))  # fail early on a missing dataset
    results = []
    with tempfile.TemporaryDirectory() as work:
        for recipe in args.recipes:
            extra = [f"data.limit_train={args.limit_train}"] if args.limit_train else []
            results.append(one(recipe, args.epochs, args.data_dir, Path(work), extra))
    print(f"{'recipe':<18}{'chosen by':<22}{'epoch':>6}{'test kNN-20':>13}{'linear@100':>12}")
    for r in results:
        for name, p in r["picks"].items():
            print(
                f"{r['recipe']:<18}{name:<22}{p['epoch']:>6}{p['knn']:>13.4f}"
                f"{p['linear100']:>12.4f}"
            )
    RESULTS.mkdir(exist_ok=True)
    record = {"environment": environment(), "results": results}
    (RESULTS / "checkpoint_choice.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
