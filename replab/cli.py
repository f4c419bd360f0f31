"""The ``replab`` command line. Every user error exits with status 2 and one paragraph."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import re
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeAlias

from replab.errors import ReplabError, ReplabWarning

if TYPE_CHECKING:  # replab.io imports torch, which no command line needs just to be parsed
    from replab.io import Log

EPILOG_RUN = """\
examples:
  replab run                                        # the default job: digits, no download
  replab run a1-mnist-autoencoder trainer.epochs=3 data.root=~/datasets
  replab run a1-mnist-autoencoder model.encoder.hidden=[512,256] seed=1
  replab run --resume runs/a1-mnist-autoencoder-20261123-101500

overrides are KEY.PATH=VALUE with VALUE in YAML syntax: 3, 0.001, true, null, [512,256].
Unknown keys are rejected with the list of valid ones. The run folder holds config.yaml
(the resolved recipe), metrics.jsonl, last.pt/best.pt, summary.json and report.html.
"""


EPILOG_STUDY = """\
examples:
  replab study a --dataset mnist                 # A1-A3 at the report's settings
  replab study a --dataset cifar10 --seeds 3     # mean ± std over seeds 0, 1, 2
  replab study b --quick                         # minutes on a laptop CPU
  replab study b --set ks=[2,32,300]             # study options (b: ks, transfer_k, dropout_ks)
  replab study e --set trials=40 --override E2:trainer.epochs=10   # a longer search
  replab study e --set from_report=false         # E2 from TPE's draws alone \
(default: report 003's point first)
  replab study c --set angles=[0,90,180,270]     # C2's 4-way rotation pretext instead of 0/90
  replab study d --set classes=[cat,dog]         # the SVM on any two CIFAR-10 classes
  replab study a --dataset cifar10 --override A3:trainer.epochs=15   # change one part's recipe
  replab study g --dataset fashion_mnist --seeds 3   # AE, VAE, MAE, supervised, seven SSL methods
  replab study g --quick --set methods=[SimCLR,BYOL] --jobs 2   # two methods, two at once
  replab study g --quick --set backbone=vit      # every method on the small ViT (or timm:<name>)
  replab study --resume runs/study-a-mnist-20261123-101500
  replab study --resume runs/study-e-20261123-101500 --seeds 3   # add seeds 1, 2; \
seed 0's runs are reused

The study folder holds one run folder per part and seed (A1/seed0, ...), study.html (the
reference table beside replab's mean ± std, time per part, figures and the answer to the
study's question), study.md and study-summary.json.
"""


EPILOG_TUNE = """\
examples:
  replab tune digits-autoencoder --space space.yaml --trials 20 probe.enabled=false \
analysis.enabled=false
  replab tune my-e2-recipe.yaml --space e2-fashion-space --trials 20 --data-dir ~/datasets
  replab tune RECIPE --space space.yaml --trials 30 --metric probe.val_accuracy --direction maximize
  replab tune RECIPE --space space.yaml --trials 20 --enqueue '{trainer.optimizer.lr: 0.0058}' \
  # try a known point first
  replab tune --resume runs/digits-autoencoder-tune-20261123-101500      # continue, or join as \
a 2nd worker
  replab tune RECIPE --space space.yaml --trials 100 --study-name e2 \
--storage postgresql+psycopg2://user:pw@host/optuna
                                                   # the same line on every machine: \
they share one study

SPACE.yaml maps recipe keys to distributions:
  model.encoder.latent_dim: {type: int, low: 8, high: 256, log: true}
  trainer.optimizer.lr:     {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  trainer.optimizer.name:   {type: categorical, choices: [adam, sgd]}
Every trial is a run folder STUDY_DIR/trial-0007/ (with report.html). The study folder holds
tune.json (settings), optuna.db (the study, unless --storage), trials.csv, best.yaml (the best
trial's full recipe: `replab run best.yaml`), tune.html/tune.md and figures/. See docs/tuning.md.
"""


EPILOG_ANALYZE = """\
examples:
  replab analyze my_encoder.ts --data mnist       # torch.jit.save(torch.jit.script(enc), path)
  replab analyze runs/a1-mnist-autoencoder-20261123-101500 --data fashion_mnist
                                                  # a run's encoder on other data
  replab analyze enc.ts --data cifar10 probe.trainer.epochs=30 analysis.tsne_sample=1000

The encoder sees images normalised as data.normalize says ([0, 1] pixels by default) and must
return one vector per image (larger outputs are flattened). It is never trained; the run
folder holds summary.json, figures/ and report.html like any run.
"""


EPILOG_PACK = """\
examples:
  replab data pack digits --out packed/digits            # no download: try it first
  replab data pack fashion_mnist --out /data/fmnist --shard-size 256MB
  replab data pack cifar10 --out /data/cat-dog --classes cat dog --seed 1
  replab data pack image_folder --root ~/photos --out /data/photos --skip-corrupt

DIR receives index.json and WebDataset tar shards train-000000.tar, ..., val-*.tar, test-*.tar.
Each sample is KEY.png (an image folder's files keep their own bytes: KEY.jpg, ...) and KEY.cls
(the label; -1 when unlabelled). KEY is the sample's place in its split after a seeded shuffle,
so the head of a split is a random sample. Validation, and test where the source has none, are
carved as a run with the same --seed carves them. Packing again gives the same bytes. A run
reads the pack with data.dataset=shards data.root=DIR (or a URL serving DIR).
"""


def main(argv: list[str] | None = None) -> int:
    with _as_the_command_line():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take positionals after options: KEY=VALUE overrides written after an option
    # (`replab tune RECIPE --trials 5 trainer.epochs=3`) arrive here; anything else is an error.
    if extra and (
        not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a for a in extra)
    ):
        parser.parse_args(argv)  # reports the unrecognised arguments the usual way
    if extra:
        args.overrides = [*args.overrides, *extra]
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if getattr(args, "threads", None):
        # --threads wins over $REPLAB_THREADS; worker processes inherit it from the environment
        os.environ["REPLAB_THREADS"] = str(args.threads)
    if args.command in ("study", "sweep") and (getattr(args, "jobs", 1) or 1) > 1:
        from replab.runs import forkserver

        forkserver.start()  # its imports overlap this process's own
    try:
        if args.command != "run" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ReplabError(
                f"`replab {args.command}` runs in one process; "
                "only `replab run` trains across torchrun's processes",
                "launch it without torchrun, "
                "or run each recipe with `torchrun ... -m replab.cli run RECIPE`",
            )
        return args.func(args)
    except ReplabError as err:
        # one line, whatever the message quotes (a YAML excerpt, an exception's own newlines)
        print(f"replab: error: {' '.join(err.message.split())}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:
        # run_experiment names the folder it was writing; the other commands resume their own
        resume = getattr(err, "replab_resume", None)
        where = (
            f"{resume[0]} keeps its last checkpoint; continue with `{resume[1]}`"
            if resume
            else "a run folder keeps its last checkpoint (continue with --resume)"
        )
        print(f"replab: interrupted; {where}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
    except BrokenPipeError:
        # `replab recipes | head -1`: the reader has gone, which is not an error. Point stdout
        # at /dev/null so the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's stop, `kill`): handled as Ctrl-C is, so the run folder is left
    resumable and the same resume line is printed; the exit status says which signal it was."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _as_the_command_line() -> Iterator[None]:
    """While a command runs: replab's warnings as log lines, and SIGTERM raising
    ``Terminated`` where it would otherwise end the process silently (its default; a handler
    someone else installed, torchrun's or a test harness's, is kept). Both are put back
    after, for ``main`` called in a process of someone else's (tests, a notebook)."""
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    ours = False
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminate)
            ours = True
    except ValueError:  # not the main thread: signals are not ours to handle
        pass
    try:
        yield
    finally:
        warnings.showwarning = shown
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a missing or mistyped argument) in replab's
    form: problem, fix, exit 2."""

    # Fills in help text that needs the registries (and so torch) only when help is printed:
    # every other command line, a mistyped recipe included, is parsed without importing them.
    lazy: Callable[[argparse.ArgumentParser], None] | None = None

    def format_help(self) -> str:
        if self.lazy is not None:
            self.lazy(self)
            self.lazy = None
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(
            2,
            f"replab: error: {message}. "
            f"Fix: see `{self.prog} --help` for the arguments it takes.\n",
        )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="replab",
        description=(
            "replab: representation-learning studies as one command (train, evaluate, report)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # one builder per command, in the order `replab --help` lists them
    for add in (
        _add_run,
        _add_sweep,
        _add_study,
        _add_tune,
        _add_recipes,
        _add_report,
        _add_compare,
        _add_datasets,
        _add_data,
        _add_analyze,
        _add_plugins,
    ):
        add(sub)
    return parser


# What add_subparsers hands each builder (argparse gives the type no public name)
_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


# -- options shared by several commands: each is declared here once ---------------------------


def _add_runs_dir(parser: argparse.ArgumentParser, folder: str) -> None:
    # None here: every replab.api function resolves it with api.default_runs_dir() (./runs or
    # $REPLAB_RUNS), which the command line must not import (it imports torch) to parse.
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help=f"where {folder} goes (default: ./runs or $REPLAB_RUNS)",
    )


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    # One meaning for every command: the recipes' data.root, as _data_root spells it
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="dataset folder, the same as data.root=DIR: looked in before $REPLAB_DATA "
        "and the cache",
    )


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_count,
        metavar="N",
        help="torch threads per run (default: this process's CPUs shared among the live "
        "replab runs; $REPLAB_THREADS sets it too)",
    )


def _add_trust_code(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--trust-code",
        action="store_true",
        help=f"let {what} import the code its saved config names by import path "
        "(package.module:Class); a saved folder or file is data, so without this replab refuses "
        "it: pass it only for folders and files from someone you trust",
    )


def _add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_count,
        default=1,
        metavar="N",
        help="train N runs at once, each in its own process with 1/N of the CPUs "
        "(default 1); results equal --jobs 1 run for run",
    )


def _data_root(data_dir: str | None) -> list[str]:
    """--data-dir DIR as the override it stands for; the value is quoted so that a folder
    named e.g. ``null``, ``2024`` or ``a: b`` stays a path (the studies quote it alike)."""
    return [f"data.root={json.dumps(data_dir)}"] if data_dir else []


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 4096")
    return value


# -- one builder per command ------------------------------------------------------------------


def _add_run(sub: _Commands) -> None:
    run = sub.add_parser(
        "run",
        help="train, evaluate and report one recipe",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train, evaluate and report one experiment recipe (YAML).",
    )
    run.lazy = _dataset_epilog
    run.add_argument(
        "recipe",
        nargs="?",
        help=(
            "recipe file or bundled recipe name "
            "(see `replab recipes`; default: the digits autoencoder)"
        ),
    )
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override recipe keys, e.g. trainer.epochs=3",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        type=Path,
        help="continue an interrupted run from its last checkpoint",
    )
    _add_runs_dir(run, "the run folder")
    _add_data_dir(run)
    _add_threads(run)
    _add_trust_code(run, "--resume RUN_DIR")
    run.set_defaults(func=_cmd_run)


def _add_sweep(sub: _Commands) -> None:
    sw = sub.add_parser(
        "sweep",
        help="one run per value of a recipe key (a grid for several keys), one study folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train one run per value of each --over key and compare them in one study folder."
        ),
        epilog=(
            "example:\n  replab sweep a1-mnist-autoencoder "
            "--over model.encoder.latent_dim=[2,8,32,128] trainer.epochs=5\n\nThe study "
            "folder holds every run, sweep.json, study.md/study.html and figures/<metric>.png."
        ),
    )
    sw.add_argument("recipe", help="recipe file or bundled recipe name")
    sw.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="fixed overrides for every run"
    )
    sw.add_argument(
        "--over",
        action="append",
        required=True,
        metavar="KEY=[V1,V2,...]",
        help="a key and the values to sweep (repeat for a grid)",
    )
    _add_runs_dir(sw, "the study folder")
    _add_threads(sw)
    _add_jobs(sw)
    sw.set_defaults(func=_cmd_sweep)


def _add_study(sub: _Commands) -> None:
    st = sub.add_parser(
        "study",
        help="run a whole study (several recipes, seeds, one report): see `replab study --help`",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_STUDY,
        description="Run every part of a study of a reference report and write one report "
        "beside its published figures.",
    )
    st.lazy = _study_help
    st.add_argument("name", nargs="?", metavar="STUDY", help="which study (listed above)")
    st.add_argument(
        "--dataset",
        help="study a and ssl: mnist (default) or cifar10; study g: any dataset replab reads "
        "(default mnist, downloaded when not found; digits needs no download)",
    )
    st.add_argument(
        "--quick",
        action="store_true",
        help=(
            "small, fast profile (minutes on a laptop CPU; what CI runs), not the report's settings"
        ),
    )
    st.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help=(
            "run every part with seeds 0..N-1 and report mean ± std "
            "(default 1); with --resume, grow the study to N seeds (its finished runs are reused)"
        ),
    )
    st.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a study option"
    )
    st.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="PART:KEY=VALUE",
        help=(
            "change one part's recipe, "
            "e.g. A3:trainer.epochs=15 (* for every part); the report lists every override"
        ),
    )
    _add_runs_dir(st, "the study folder")
    _add_data_dir(st)
    _add_trust_code(st, "--resume STUDY_DIR")
    st.add_argument(
        "--resume",
        metavar="STUDY_DIR",
        type=Path,
        help="continue a study: finished runs are reused, an interrupted one resumes",
    )
    _add_threads(st)
    _add_jobs(st)
    st.set_defaults(func=_cmd_study)


def _add_tune(sub: _Commands) -> None:
    tu = sub.add_parser(
        "tune",
        help="hyperparameter search with Optuna (TPE, median pruning), one study folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG_TUNE,
        description=(
            "Search recipe keys over a space "
            "(SPACE.yaml) with Optuna: N trials, each an ordinary run, "
            "unpromising ones pruned by epoch; writes best.yaml, trials.csv, figures and tune.html."
        ),
    )
    tu.add_argument("recipe", nargs="?", help="recipe file or bundled recipe name")
    tu.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="fixed overrides for every trial, e.g. trainer.epochs=10",
    )
    _add_tune_search(tu)
    _add_tune_sampling(tu)
    where = tu.add_mutually_exclusive_group()
    where.add_argument(
        "--study-dir",
        type=Path,
        metavar="DIR",
        help="the study folder (default RUNS_DIR/<name>-tune-<time>)",
    )
    where.add_argument(
        "--resume",
        type=Path,
        metavar="STUDY_DIR",
        help="continue a study (or join it as another worker); --trials N raises its target",
    )
    _add_runs_dir(tu, "the study folder")
    _add_data_dir(tu)
    _add_threads(tu)
    _add_trust_code(tu, "--resume STUDY_DIR")
    _add_jobs(tu)
    tu.set_defaults(func=_cmd_tune)


def _add_tune_search(tu: argparse.ArgumentParser) -> None:
    """What `replab tune` searches and where the study is kept."""
    tu.add_argument(
        "--space",
        metavar="SPACE.yaml",
        help="the search space: recipe keys mapped to distributions (file or bundled name)",
    )
    tu.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="finished (complete or pruned) trials wanted, across all workers",
    )
    tu.add_argument(
        "--metric",
        default="val.loss",
        help=(
            "summary metric to optimise "
            "(default val.loss; its per-epoch form, val_loss, drives pruning)"
        ),
    )
    tu.add_argument(
        "--direction",
        default="minimize",
        choices=["minimize", "maximize"],
        help="minimize (default) or maximize the metric",
    )
    tu.add_argument(
        "--storage",
        metavar="URL",
        help=(
            "Optuna storage URL (default sqlite:///STUDY_DIR/optuna.db), "
            "e.g. postgresql+psycopg2://user:pw@host/db for many workers"
        ),
    )
    tu.add_argument(
        "--study-name",
        help=(
            "the study's name in the storage "
            "(default: the study folder's name); workers sharing a storage pass the same"
        ),
    )


def _add_tune_sampling(tu: argparse.ArgumentParser) -> None:
    """How `replab tune` draws its trials and prunes them."""
    tu.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    tu.add_argument("--no-prune", action="store_true", help="run every trial to the end")
    tu.add_argument(
        "--prune-startup",
        type=int,
        default=5,
        metavar="N",
        help="trials that must finish before pruning starts (default 5)",
    )
    tu.add_argument(
        "--prune-warmup",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="epochs of each trial that are never pruned (default 0)",
    )
    tu.add_argument(
        "--enqueue",
        action="append",
        default=[],
        metavar="POINT",
        help="a point to try before the sampler draws, as a YAML mapping of space keys, e.g. "
        "'{trainer.optimizer.lr: 0.0058, "
        "model.encoder.latent_dim: 185}' (keys left out are drawn); repeatable",
    )


def _add_recipes(sub: _Commands) -> None:
    rc = sub.add_parser(
        "recipes",
        help="list the bundled recipes",
        description="List the recipes that ship with replab, runnable by name.",
    )
    rc.set_defaults(func=_cmd_recipes)


def _add_report(sub: _Commands) -> None:
    rep = sub.add_parser(
        "report",
        help="rebuild report.html of saved runs without retraining",
        description=(
            "Rebuild each run folder's report.html from its summary.json, figures/ and config.yaml."
        ),
    )
    rep.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    rep.set_defaults(func=_cmd_report)


def _add_compare(sub: _Commands) -> None:
    cmp_ = sub.add_parser(
        "compare",
        help="side-by-side table of runs (Markdown and HTML)",
        description="Write a table comparing runs' metrics, with the reference figures first.",
    )
    cmp_.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    cmp_.add_argument(
        "--out",
        type=Path,
        default=Path("compare"),
        help="output path without extension (default: ./compare -> compare.md, compare.html)",
    )
    cmp_.set_defaults(func=_cmd_compare)


def _add_datasets(sub: _Commands) -> None:
    ds = sub.add_parser(
        "datasets",
        help="list datasets, where they are found, and whether they are cached",
        description="List the registered datasets and where replab finds each one.",
    )
    _add_data_dir(ds)
    ds.set_defaults(func=_cmd_datasets)


def _add_data(sub: _Commands) -> None:
    data = sub.add_parser(
        "data",
        help="prepare a dataset: pack it into WebDataset shards",
        description="Prepare a dataset for replab. `replab data pack SOURCE --out DIR` writes "
        "any dataset replab reads as tar shards and an index, for data too large to hold.",
    )
    actions = data.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    pk = actions.add_parser(
        "pack",
        help="write SOURCE as WebDataset tar shards and index.json in DIR",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write SOURCE's train, val and test splits as WebDataset tar shards of at "
        "most --shard-size each, and index.json (classes, shape, counts, each shard's SHA-256). "
        "Every image is read and checked before DIR is touched.",
        epilog=EPILOG_PACK,
    )
    pk.add_argument("source", metavar="SOURCE", help="a dataset name (see `replab datasets`)")
    pk.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder for the shards: new, empty or a previous pack (which is replaced)",
    )
    pk.add_argument(
        "--root",
        metavar="PATH",
        help="data.root: the folder of image_folder, the file of npz; for the others a folder "
        "to look in before $REPLAB_DATA and the cache",
    )
    pk.add_argument(
        "--shard-size",
        type=_byte_size,
        default=1 << 30,
        metavar="SIZE",
        help="the most bytes a shard holds, e.g. 512MB, 1GB, 100KB or plain bytes "
        "(default 1GB; 1KB = 1024 bytes); a larger single image gets a shard of its own",
    )
    pk.add_argument(
        "--seed", type=int, default=0, metavar="N", help="carves and shuffles the splits (0)"
    )
    pk.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="data.val_fraction (default 0.1)",
    )
    pk.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="data.test_fraction, for sources without a test split (default 0.2)",
    )
    pk.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="keep only these classes, relabelled 0..n-1 in this order (data.classes)",
    )
    pk.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="leave out images that cannot be decoded (counted in index.json and warned "
        "about) instead of stopping",
    )
    pk.lazy = _dataset_epilog
    pk.set_defaults(func=_cmd_data_pack)


# a size as people write it: 512MB, 1GB, 1.5GiB, 100KB, 4096 (K, M, G, T are powers of 1024)
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def _byte_size(text: str) -> int:
    found = _SIZE.fullmatch(text)
    value = float(found[1]) * 1024 ** " KMGT".index(found[2].upper() or " ") if found else 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: give e.g. 512MB, 1GB, 100KB or a number of bytes"
        )
    return int(value)


def _add_analyze(sub: _Commands) -> None:
    an = sub.add_parser(
        "analyze",
        help="the whole latent-space analysis of an encoder trained anywhere (no training)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Probes (linear, MLP), kNN accuracy, separability, PCA, t-SNE with hover "
        "images, and with a decoder reconstructions, interpolation and samples, for an encoder "
        "given as a TorchScript file or a finished run folder; writes a run folder with "
        "report.html. In Python, replab.analyze(module, ...) takes any torch.nn.Module.",
        epilog=EPILOG_ANALYZE,
    )
    an.add_argument("encoder", help="a TorchScript file (torch.jit.save) or a finished run folder")
    an.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="data.*, probe.*, analysis.* keys"
    )
    an.add_argument("--data", default="digits", help="dataset to analyse on (default: digits)")
    an.add_argument("--name", help="name of the run folder (default: the file or folder name)")
    _add_runs_dir(an, "the run folder")
    _add_data_dir(an)
    _add_trust_code(an, "a run folder or program file ENCODER")
    an.set_defaults(func=_cmd_analyze)


def _add_plugins(sub: _Commands) -> None:
    pl = sub.add_parser(
        "plugins",
        help="list installed replab plugins (entry points in group replab.plugins)",
        description="List the installed packages that offer replab components under the "
        "replab.plugins entry point. None is imported: set REPLAB_PLUGINS=name[,name] (or all) "
        "to load the ones you want before a command.",
    )
    pl.set_defaults(func=_cmd_plugins)


def _dataset_epilog(parser: argparse.ArgumentParser) -> None:
    from replab.data import DATASETS

    rows = [
        f"  {n:<14}{DATASETS.get(n).title}"
        + ("  (yours: data.root=PATH, see docs/datasets.md)" if DATASETS.get(n).user_path else "")
        for n in DATASETS.names()
    ]
    parser.epilog = (
        f"{parser.epilog}\ndatasets (data.dataset=NAME; `replab datasets` says where each one "
        "is found):\n" + "\n".join(rows)
    )


def _study_help(parser: argparse.ArgumentParser) -> None:
    """The study list, each title and option from the study registry."""
    from replab.studies.runner import catalogue

    studies = catalogue()
    parser.description = f"{parser.description}\n\n" + "\n".join(
        f"  {n}  {title}" for n, title, _ in studies
    )
    options = "; ".join(
        f"{n} takes {', '.join(o)}" for n, _, o in studies if o and o != ["dataset"]
    )
    for action in parser._actions:
        if action.dest == "name":
            action.help = f"which study: {', '.join(n for n, _, _ in studies)} (listed above)"
        elif action.dest == "set":
            action.help = f"a study option: {options}"


def _cmd_analyze(args: argparse.Namespace) -> int:
    from replab import api

    run = api.analyze(
        args.encoder,
        args.data,
        *args.overrides,
        *_data_root(args.data_dir),
        name=args.name,
        runs_dir=args.runs_dir,
        log=_log,
        trust_code=args.trust_code,
    )
    _print_summary(run.dir, run.summary)
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from replab.registry import plugins

    found = plugins()
    for name, target, dist in found:
        print(f"{name:<20}{target:<40}{dist}")
    if not found:
        print(
            "no replab plugins installed (packages declare them under the entry point "
            "group replab.plugins)"
        )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from replab.recipes import spec_for

    recipe, overrides = args.recipe, list(args.overrides)
    if recipe and "=" in recipe and not Path(recipe).exists():
        # `replab run trainer.epochs=3`: overrides on the default
        recipe, overrides = None, [recipe, *overrides]
    if args.resume and (recipe or overrides or args.data_dir):
        raise ReplabError(
            "--resume continues a run exactly as it was configured",
            "drop the recipe and overrides, or start a new run without --resume",
        )
    overrides += _data_root(args.data_dir)
    if not args.resume:  # a bad recipe or override fails here, before torch is imported
        spec_for(recipe, overrides)
    from replab import api
    from replab.training import distributed

    # Under torchrun: one process group for the run (nccl on GPUs,
    # gloo on CPU); rank 0 alone prints.
    run = api.run(
        recipe,
        *overrides,
        runs_dir=args.runs_dir,
        resume=args.resume,
        log=_log,
        trust_code=args.trust_code,
    )
    if run is not None and distributed.is_main():
        _print_summary(run.dir, run.summary)
    return 0


def _print_line(message: str) -> None:
    print(f"[replab] {message}", flush=True)


# The log every command hands replab.api; typed so mypy holds it to the api's Log
_log: Log = _print_line
_SHOW_WARNING = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """replab's own warnings as lines of the log ("[replab] warning: ..."), without the file
    and line Python names; any other warning as Python shows it."""
    if issubclass(category, ReplabWarning):
        _print_line(f"warning: {message}")
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _print_summary(run_dir: Path, summary: dict) -> None:
    reference = summary.get("reference") or {}
    # no reference column where there is none to show (none given, or measured on other data)
    print(f"\n{'metric':<24}{'replab':>10}" + (f"{'reference':>12}" if reference else ""))
    for name, value in summary["metrics"].items():
        if ".shots." in f".{name}" and not name.endswith(".auc"):
            continue  # the curves' points: one line each below
        ref = reference.get(name)
        shown = f"{'' if ref is None else f'{ref:.4f}':>12}" if reference else ""
        print(f"{name:<24}{value:>10.4f}{shown}")
    if summary.get("reference_note"):
        print(f"reference: {summary['reference_note']}")
    _print_curves(summary)
    t = summary["timings"]
    helper = t.get("image_space_helper")
    print(
        f"\nwall time: {t['total']:.1f} s "
        f"(data {t['data']:.1f}, train {t['train']:.1f}, evaluation {t['evaluation']:.1f}"
        + (f"; the image space's helper {helper:.1f} during training)" if helper else ")")
    )
    print(f"run folder: {run_dir}\nreport:     {run_dir / 'report.html'}")


def _print_curves(summary: dict) -> None:
    """The label-efficiency curves, one line each: mean test accuracy at k labels per class."""
    curves = summary.get("label_efficiency") or {}
    metrics = summary["metrics"]
    for prefix in ("", "image."):
        for name in ("linear", "knn"):
            key = f"{prefix}shots.{name}"
            if f"{key}.auc" in metrics:  # image.* only with probe.pixels
                points = [f"{k}: {metrics[f'{key}.k{k}']:.3f}" for k in curves.get("shots", [])]
                print(f"{key} (labels per class: accuracy)  " + "  ".join(points))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from replab import api

    result = api.sweep(
        args.recipe, args.over, *args.overrides, runs_dir=args.runs_dir, log=_log, jobs=args.jobs
    )
    print(f"study folder: {result.dir}\nreport:       {result.html}")
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from replab import api
    from replab.spec import parse_yaml

    if args.resume:
        extra = (
            args.recipe
            or args.overrides
            or args.space
            or args.data_dir
            or args.study_name
            or args.no_prune
            or args.enqueue
        )
        if extra:
            raise ReplabError(
                "--resume continues a study exactly as it was started",
                "pass only --resume STUDY_DIR "
                "(with --trials N to raise its target, --storage URL to give a password again)",
            )
        result = api.tune(
            resume=args.resume,
            trials=args.trials,
            storage=args.storage,
            log=_log,
            jobs=args.jobs,
            trust_code=args.trust_code,
        )
    else:
        if not args.recipe or not args.space or args.trials is None:
            raise ReplabError(
                "tune needs a recipe, --space and --trials",
                "run e.g. `replab tune digits-autoencoder --space space.yaml --trials 20`",
            )
        overrides = [*args.overrides, *_data_root(args.data_dir)]
        result = api.tune(
            args.recipe,
            args.space,
            args.trials,
            *overrides,
            runs_dir=args.runs_dir,
            study_dir=args.study_dir,
            log=_log,
            storage=args.storage,
            metric=args.metric,
            direction=args.direction,
            study_name=args.study_name or "",
            seed=args.seed,
            prune=not args.no_prune,
            prune_startup=args.prune_startup,
            prune_warmup=args.prune_warmup,
            enqueue=[parse_yaml(point, f"--enqueue {point!r}") for point in args.enqueue],
            jobs=args.jobs,
        )
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items())
    print(f"\n{result.finished} trials finished ({counts})")
    if result.best:
        print(f"best: trial {result.best['number']}, value {result.best['value']:.6g}")
        for key, value in result.best["params"].items():
            print(f"  {key}: {value}")
        print(f"best recipe: {result.best_yaml}  (replab run {result.best_yaml})")
    else:
        print("no trial completed")
    print(f"study folder: {result.study_dir}\nreport:       {result.study_dir / 'tune.html'}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from replab import api
    from replab.reporting.study_report import reference_markdown, table_markdown
    from replab.spec import parse_yaml

    started = args.name or args.set or args.dataset or args.quick or args.override
    if args.resume and (started or args.data_dir):
        raise ReplabError(
            "--resume continues a study exactly as it was started",
            "pass only --resume STUDY_DIR (and --seeds N to add seeds)",
        )
    if not args.resume and not args.name:
        raise ReplabError(
            "which study? none was named",
            "run e.g. `replab study a --dataset mnist` or `replab study b --quick`",
        )
    params = {"dataset": args.dataset} if args.dataset else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ReplabError(
                f"--set {item!r} is not of the form key=value", "write e.g. --set ks=[2,32,300]"
            )
        params[key] = parse_yaml(value, f"the value of --set {key}")
    reserved = sorted(set(params) & set(inspect.signature(api.study).parameters))
    if reserved:
        raise ReplabError(
            f"--set {reserved[0]} is not a study option", "use the flag of that name instead"
        )
    result = api.study(
        args.name,
        quick=args.quick,
        seeds=args.seeds,
        overrides=args.override,
        runs_dir=args.runs_dir,
        data_dir=args.data_dir,  # the study turns it into each part's data.root, as _data_root
        resume=args.resume,
        log=_log,
        jobs=args.jobs,
        trust_code=args.trust_code,
        **params,
    )
    if result.report.reference:
        print(
            f"\nReference figures beside replab's\n\n{reference_markdown(result.report.reference)}"
        )
    else:  # a study without published figures: its first table is the result
        first = next((s for s in result.report.sections if s.table), None)
        if first is not None and first.table is not None:
            print(f"\n{first.title}\n\n{table_markdown(*first.table)}")
    print(
        f"\nwall time {result.seconds:.1f} s\nstudy folder: {result.dir}\n"
        f"report:       {result.html}"
    )
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from replab import recipes
    from replab.recipes import read_recipe

    names = recipes.names()
    width = max(map(len, names), default=0) + 2
    for name in names:
        description = " ".join(str(read_recipe(name).get("description", "")).split())
        print(f"{name:<{width}}{description[:100]}{'...' if len(description) > 100 else ''}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from replab.runs.rebuild import rebuild_report

    for run_dir in args.run_dirs:
        print(f"wrote {rebuild_report(run_dir)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from replab.runs.rebuild import compare_runs

    md, html = compare_runs(args.run_dirs, args.out)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {html}")
    return 0


def _cmd_data_pack(args: argparse.Namespace) -> int:
    from replab.data.pack import pack

    index = pack(
        args.source,
        args.out,
        root=args.root,
        shard_bytes=args.shard_size,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        classes=args.classes,
        skip_corrupt=args.skip_corrupt,
    )
    counts = " / ".join(f"{part.count:,} {name}" for name, part in index.splits.items())
    shards = sum(len(part.shards) for part in index.splits.values())
    skipped = f", {index.skipped:,} unreadable skipped" if index.skipped else ""
    print(f"packed {counts} images{skipped} into {shards} shards at {args.out} (index.json)")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from replab.data import DATASETS, cache_dir, find

    print(f"{'name':<15}{'title':<22}{'shape':<12}{'status':<10}location")
    for name in DATASETS.names():
        source = DATASETS.get(name)()
        shape = "x".join(map(str, source.shape)) or "any"
        if source.user_path:
            status = "yours"
            where = f"data.root={'FILE.npz' if name == 'npz' else 'DIR'} (docs/datasets.md)"
            decoded = sorted((cache_dir() / name).glob("*.pt"))
            if decoded:  # image folders decoded once and cached (replab/data/image_folder.py)
                size = sum(p.stat().st_size for p in decoded) / 1e6
                where += f"; {len(decoded)} decoded in {cache_dir() / name} ({size:,.0f} MB)"
        elif source.embedded:
            status, where = "embedded", "bundled with an installed package (no download)"
        else:
            folder = find(source, args.data_dir)
            cached = folder is not None and cache_dir() in folder.parents
            status = "cached" if cached else ("found" if folder else "missing")
            where = str(folder) if folder else f"downloads to {cache_dir()} on first use"
        print(f"{name:<15}{source.title:<22}{shape:<12}{status:<10}{where}")
    print(
        "\nsearch order: data.root / --data-dir, "
        f"$REPLAB_DATA, then the cache {cache_dir()} ($REPLAB_CACHE)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
