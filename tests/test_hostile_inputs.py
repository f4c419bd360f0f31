"""The hostile-input corpus: every malformed recipe, dataset file, checkpoint or CLI value is
one clear error (``replab: error: ... Fix: ...``), exit status 2, no traceback, and nothing it
tries to execute runs.

To add a case, append a ``Case`` to CORPUS: a name, the argv (``{tmp}`` is the case's own
folder, ``{run}`` a copy of a finished digits run, ``{data}`` the shared datasets), the files to
write first (relative to ``{tmp}``; bytes, text, or a function of the ``Ctx`` returning either),
and fragments the error must contain. ``marker=True`` says the input tries to create
``{tmp}/PWNED``, which must not exist afterwards. The plain override errors live in
tests/test_cli_errors.py (CASES); this corpus covers the files and values around them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from replab.cli import main
from replab.io import folder_lock

REPO = Path(__file__).resolve().parents[1]
Content = bytes | str | Callable[["Ctx"], bytes | str]


@dataclass
class Ctx:
    tmp: Path
    run: Path | None = None
    data: Path | None = None

    def fmt(self, text: str) -> str:
        for name in ("tmp", "run", "data"):
            text = text.replace("{" + name + "}", str(getattr(self, name)))
        return text


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    files: dict[str, Content] = field(default_factory=dict)
    # "run": a finished run at {run}; "data": the shared datasets
    needs: frozenset[str] = frozenset()
    marker: bool = False
    # symlinks to make (relative to {tmp}) -> their targets
    links: dict[str, str] = field(default_factory=dict)
    # a folder (relative to {tmp}) whose writer lock this test holds while the command runs
    locked: str | None = None


class Evil:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(ctx: Ctx) -> bytes:
    return pickle.dumps(Evil(ctx.tmp / "PWNED"), protocol=2)


def evil_checkpoint(ctx: Ctx) -> bytes:
    buffer = io.BytesIO()
    torch.save({"model": Evil(ctx.tmp / "PWNED")}, buffer)
    return buffer.getvalue()


def torch_bytes(obj) -> Callable[[Ctx], bytes]:
    def make(ctx: Ctx) -> bytes:
        buffer = io.BytesIO()
        torch.save(obj(ctx) if callable(obj) else obj, buffer)
        return buffer.getvalue()

    return make


def run_file(
    name: str, transform: Callable[[bytes], bytes] = lambda b: b
) -> Callable[[Ctx], bytes]:
    return lambda ctx: transform((ctx.run / name).read_bytes())


def other_shape_checkpoint(ctx: Ctx) -> dict:
    state = torch.load(ctx.run / "last.pt", weights_only=True)
    state["model"] = {k: torch.zeros(3, 3) for k in state["model"]}
    return state


def billion_laughs() -> str:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, 10):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


BASE = "model: {encoder: {name: mlp}, decoder: {name: mlp_decoder}}\nobjective: {name: l1}\n"
RECIPE = "{tmp}/recipe.yaml"


def run(*args: str) -> tuple[str, ...]:
    return ("run", *args, "--runs-dir", "{tmp}/runs")


def recipe_case(name: str, text: Content, *expect: str, marker: bool = False) -> Case:
    return Case(name, run(RECIPE), expect, {"recipe.yaml": text}, marker=marker)


def resume_case(name: str, last_pt: Content, *expect: str, marker: bool = False) -> Case:
    """A run folder with the finished run's config and a crafted last.pt, resumed."""
    files = {"r/config.yaml": run_file("config.yaml"), "r/last.pt": last_pt}
    return Case(name, ("run", "--resume", "{tmp}/r"), expect, files, frozenset({"run"}), marker)


def pretrained_case(name: str, checkpoint: Content, *expect: str, marker: bool = False) -> Case:
    return Case(
        name,
        run("model.pretrained.path={tmp}/p.pt", "trainer.epochs=1"),
        expect,
        {"p.pt": checkpoint},
        frozenset({"run"}),
        marker,
    )


def mnist_case(
    name: str,
    damage: Callable[[bytes], bytes],
    *expect: str,
    member: str = "t10k-labels-idx1-ubyte.gz",
) -> Case:
    """MNIST from the shared data with ``member`` (t10k-labels) damaged by ``damage``."""
    files: dict[str, Content] = {
        f"MNIST/raw/{member}": lambda ctx: damage((ctx.data / "MNIST/raw" / member).read_bytes())
    }
    for other in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        if other != member:
            files[f"MNIST/raw/{other}"] = lambda ctx, other=other: (
                ctx.data / "MNIST/raw" / other
            ).read_bytes()
    return Case(
        name,
        run("a1-mnist-autoencoder", "data.root={tmp}", "data.download=false"),
        expect,
        files,
        frozenset({"data"}),
    )


def cifar_case(name: str, batch: Content, *expect: str, marker: bool = False) -> Case:
    """cifar10-mini from the shared data with data_batch_1 replaced by ``batch``."""
    folder = "cifar-10-batches-py"
    files = {f"{folder}/data_batch_1": batch}
    for other in (
        "batches.meta",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        files[f"{folder}/{other}"] = lambda ctx, other=other: (
            ctx.data / "cifar10-mini" / folder / other
        ).read_bytes()
    return Case(
        name,
        run("c1-cifar10-cnn", "data.root={tmp}", "data.download=false"),
        expect,
        files,
        frozenset({"data"}),
        marker,
    )


def summary_with(**changes) -> Callable[[Ctx], str]:
    """The finished run's summary.json with ``changes`` (None removes a key)."""

    def make(ctx: Ctx) -> str:
        summary = json.loads((ctx.run / "summary.json").read_text(encoding="utf-8"))
        summary.update(changes)
        return json.dumps({k: v for k, v in summary.items() if v is not None})

    return make


FOLDER_COMMANDS = {
    "report": ("report", "{tmp}/r"),
    "compare": ("compare", "{tmp}/r", "--out", "{tmp}/cmp"),
    "resume": ("run", "--resume", "{tmp}/r"),
}


def folder_case(
    name: str, command: str, files: dict[str, Content], *expect: str, **options
) -> Case:
    """A run folder ``{tmp}/r`` with the finished run's config.yaml and ``files`` (relative to
    it), given to ``command`` (report, compare or resume)."""
    return Case(
        name,
        FOLDER_COMMANDS[command],
        expect,
        {"r/config.yaml": run_file("config.yaml"), **{f"r/{k}": v for k, v in files.items()}},
        frozenset({"run"}),
        **options,
    )


def summary_case(name: str, command: str, summary: Content, *expect: str) -> Case:
    return folder_case(name, command, {"summary.json": summary}, *expect)


def checkpoint_with(**changes) -> Callable[[Ctx], bytes]:
    """The finished run's last.pt with entries replaced (values may be functions of the
    loaded state)."""

    def make(ctx: Ctx) -> dict:
        state = torch.load(ctx.run / "last.pt", weights_only=True)
        for key, value in changes.items():
            state[key] = value(state) if callable(value) else value
        return state

    return torch_bytes(make)


def wrong_moments(state: dict) -> dict:
    optimizer = state["optimizer"]
    first = next(iter(optimizer["state"]))
    optimizer["state"][first] = {
        k: torch.zeros(7, 7) if isinstance(v, torch.Tensor) and v.dim() else v
        for k, v in optimizer["state"][first].items()
    }
    return optimizer


def study_case(name: str, study_json: Content, *expect: str) -> Case:
    return Case(name, ("study", "--resume", "{tmp}/s"), expect, {"s/study.json": study_json})


def tune_case(name: str, tune_json: Content, *expect: str) -> Case:
    return Case(name, ("tune", "--resume", "{tmp}/t"), expect, {"t/tune.json": tune_json})


def idx_labels(value: int) -> Callable[[bytes], bytes]:
    """The real labels file with every label set to ``value``."""

    def damage(raw: bytes) -> bytes:
        data = gzip.decompress(raw)
        return gzip.compress(data[:8] + bytes([value]) * (len(data) - 8))

    return damage


def idx_images_reshaped(raw: bytes) -> bytes:
    """The real test images, their header claiming 14x56 images (the same bytes)."""
    data = gzip.decompress(raw)
    return gzip.compress(data[:8] + (14).to_bytes(4, "big") + (56).to_bytes(4, "big") + data[16:])


SPACE = "{tmp}/space.yaml"


def tune(*args: str) -> tuple[str, ...]:
    return ("tune", "digits-autoencoder", "--space", SPACE, "--trials", "1", *args)


SPACE_OK = "trainer.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"


def gz_member_bomb(raw: bytes) -> bytes:
    """The real labels followed by gigabytes of zeros as extra gzip members (about 1 MB on disk)."""
    zeros = gzip.compress(bytes(1 << 24), compresslevel=9)
    return raw + zeros * 200


def idx_claiming(dims: list[int]) -> Callable[[bytes], bytes]:
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return lambda raw: gzip.compress(header + b"\0" * 64)


CORPUS: list[Case] = [
    # --- recipes -------------------------------------------------------------------------
    recipe_case("wrong type", BASE + "trainer: {epochs: many}\n", "trainer.epochs", "integer"),
    recipe_case("section of the wrong type", BASE + "trainer: [1, 2]\n", "trainer"),
    recipe_case(
        "unknown top-level key",
        BASE + "optimiser: {lr: 0.1}\n",
        "unknown key 'optimiser'",
        "trainer",
    ),
    recipe_case(
        "unknown nested key",
        BASE + "data: {datset: mnist}\n",
        "unknown key 'data.datset'",
        "dataset",
    ),
    recipe_case("out-of-range fraction", BASE + "data: {val_fraction: 2}\n", "data.val_fraction"),
    recipe_case("negative seed", BASE + "seed: -1\n", "seed"),
    recipe_case("billion laughs", billion_laughs(), "aliases"),
    recipe_case("merge-key alias", BASE + "a: &x {k: 1}\nb: {<<: *x}\n", "aliases"),
    recipe_case("deeply nested", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested"),
    recipe_case("huge file", BASE + "description: " + "x" * (2 << 20) + "\n", "larger than 1 MiB"),
    recipe_case("a list, not a mapping", "- model\n- objective\n", "must be a mapping"),
    recipe_case("a bare number", "42\n", "must be a mapping"),
    recipe_case("empty file", "", "missing required key 'model'"),
    recipe_case("binary garbage", bytes(range(256)) * 8, "not UTF-8"),
    recipe_case("control characters", BASE + "name: \x01\x02\x1b[31m\n", "not valid YAML"),
    recipe_case("not UTF-8", BASE.encode() + b"name: caf\xe9\xff\n", "not UTF-8", "0xe9"),
    recipe_case(
        "python object tag",
        BASE + "seed: !!python/object/apply:os.system ['touch {tmp}/PWNED']\n",
        "not valid YAML",
        marker=True,
    ),
    recipe_case(
        "negative layer width", BASE.replace("name: mlp}", "name: mlp, hidden: [-5]}"), "hidden"
    ),
    recipe_case(
        "unknown encoder parameter",
        BASE.replace("name: mlp}", "name: mlp, depth: 3}"),
        "unknown key",
        "depth",
    ),
    Case("recipe is a folder", run("{tmp}"), ("does not exist",)),
    # --- override and CLI values ---------------------------------------------------------------
    Case("epochs 1e99", run("trainer.epochs=1e99"), ("trainer.epochs",)),
    Case("negative epochs", run("trainer.epochs=-3"), ("trainer.epochs", "greater than 0")),
    Case("epochs inf", run("trainer.epochs=.inf"), ("trainer.epochs",)),
    Case("learning rate nan", run("trainer.optimizer.lr=.nan"), ("trainer.optimizer.lr",)),
    Case("absurd latent size", run("model.encoder.latent_dim=1000000000000"), ("latent_dim",)),
    Case("zero latent size", run("model.encoder.latent_dim=0"), ("latent_dim",)),
    Case("override alias bomb", run("model.encoder.hidden=&a [*a]"), ("aliases",)),
    Case(
        "override python tag",
        run("seed=!!python/object/apply:os.system ['touch {tmp}/PWNED']"),
        ("not valid YAML",),
        marker=True,
    ),
    Case("unknown class", run("data.classes=[seven]"), ("seven",)),
    Case(
        "runs-dir is a file",
        ("run", "trainer.epochs=1", "--runs-dir", "{tmp}/afile"),
        ("cannot write", "--runs-dir"),
        {"afile": "x"},
    ),
    Case("seeds 0", ("study", "a", "--seeds", "0", "--runs-dir", "{tmp}/runs"), ("--seeds 0",)),
    Case(
        "seeds 10**9",
        ("study", "a", "--seeds", "1000000000", "--runs-dir", "{tmp}/runs"),
        ("--seeds 1000000000",),
    ),
    Case("seeds not a number", ("study", "a", "--seeds", "many"), ("invalid int value",)),
    Case("unknown option", ("run", "--epochs", "3"), ("unrecognized arguments",)),
    # --- run folders and checkpoints --------------------------------------------------------
    Case("resume a missing folder", ("run", "--resume", "{tmp}/nowhere"), ("does not exist",)),
    Case(
        "resume a folder that is not a run",
        ("run", "--resume", "{tmp}"),
        ("not a replab run folder",),
    ),
    Case(
        "resume with a bombed config",
        ("run", "--resume", "{tmp}/r"),
        ("aliases",),
        {"r/config.yaml": billion_laughs()},
    ),
    Case("report of a folder that is not a run", ("report", "{tmp}"), ("not a replab run folder",)),
    Case(
        "report with a corrupt summary",
        ("report", "{tmp}/r"),
        ("not valid JSON",),
        {"r/config.yaml": run_file("config.yaml"), "r/summary.json": '{"metrics": {"a": 1'},
        frozenset({"run"}),
    ),
    resume_case(
        "truncated last.pt",
        run_file("last.pt", lambda b: b[: len(b) // 2]),
        "cannot load checkpoint",
    ),
    resume_case("empty last.pt", b"", "cannot load checkpoint"),
    resume_case("last.pt of random bytes", os.urandom(4096), "cannot load checkpoint"),
    resume_case("last.pt running code", evil_checkpoint, "cannot load checkpoint", marker=True),
    resume_case(
        "last.pt a raw pickle running code", evil_pickle, "cannot load checkpoint", marker=True
    ),
    resume_case("last.pt holding a list", torch_bytes([1, 2, 3]), "holds a list"),
    resume_case(
        "last.pt of weights only", run_file("best.pt"), "cannot resume training", "last.pt"
    ),
    resume_case(
        "last.pt of another shape", torch_bytes(other_shape_checkpoint), "does not fit this model"
    ),
    resume_case(
        "last.pt with a damaged training state",
        torch_bytes(
            lambda ctx: {
                **torch.load(ctx.run / "last.pt", weights_only=True),
                "optimizer": {"x": 1},
            }
        ),
        "damaged training state",
    ),
    pretrained_case(
        "pretrained of another shape",
        torch_bytes(lambda ctx: {"model": {"encoder.net.0.weight": torch.zeros(2, 2)}}),
        "does not fit this model",
    ),
    pretrained_case(
        "pretrained running code", evil_checkpoint, "cannot load checkpoint", marker=True
    ),
    pretrained_case("pretrained garbage", b"PK\x03\x04 not really a zip", "cannot load checkpoint"),
    Case("pretrained missing", run("model.pretrained.path={tmp}/none.pt"), ("does not exist",)),
    # --- dataset files ------------------------------------------------------------------------
    mnist_case(
        "truncated IDX gzip",
        lambda b: b[: len(b) // 2],
        "t10k-labels-idx1-ubyte.gz",
        "cannot be decompressed",
    ),
    mnist_case(
        "corrupted IDX gzip",
        lambda b: b[:100] + bytes(x ^ 0xFF for x in b[100:200]) + b[200:],
        "t10k-labels-idx1-ubyte.gz",
    ),
    mnist_case(
        "IDX gzip bomb", gz_member_bomb, "t10k-labels-idx1-ubyte.gz", "truncated or corrupt"
    ),
    mnist_case(
        "IDX header claiming terabytes",
        idx_claiming([60000, 100000, 100000]),
        "more than any real dataset",
    ),
    cifar_case(
        "truncated CIFAR batch",
        lambda ctx: (ctx.data / "cifar10-mini/cifar-10-batches-py/data_batch_1").read_bytes()[
            :100_000
        ],
        "data_batch_1",
        "truncated or corrupt",
    ),
    cifar_case("CIFAR batch of random bytes", os.urandom(10_000), "data_batch_1"),
    # what random bytes sometimes were (a CI failure): a string claiming more than sys.maxsize bytes
    cifar_case(
        "CIFAR batch claiming an endless string",
        b"\x80\x04\x8d" + (2**63 + 5).to_bytes(8, "little"),
        "data_batch_1",
    ),
    cifar_case("CIFAR batch running code", evil_pickle, "refused to load", marker=True),
    cifar_case(
        "CIFAR batch of the wrong structure",
        pickle.dumps({"data": [1, 2, 3], "labels": "x"}),
        "data_batch_1",
    ),
    mnist_case("labels outside the classes", idx_labels(42), "labels from 42 to 42", "10 classes"),
    mnist_case(
        "images of the wrong shape",
        idx_images_reshaped,
        "shape (1, 14, 56)",
        member="t10k-images-idx3-ubyte.gz",
    ),
    Case(
        "empty validation split",
        run("digits-autoencoder", "data.val_fraction=0.001"),
        ("the validation split", "is empty", "data.val_fraction"),
    ),
    # --- what a run, study or tune folder holds (issue 17) ----------------------------------
    summary_case(
        "compare embeds a file outside the run",
        "compare",
        summary_with(figures=[{"name": "t-SNE", "file": "../../../../../../etc/passwd"}]),
        "figures.0.file",
        "outside",
    ),
    summary_case(
        "report embeds a file outside the run",
        "report",
        summary_with(figures=[{"name": "x", "file": "../../../../../../etc/passwd"}]),
        "figures.0.file",
        "outside",
    ),
    summary_case(
        "compare with an absolute figure path",
        "compare",
        summary_with(figures=[{"name": "x", "file": "/etc/passwd"}]),
        "outside",
    ),
    folder_case(
        "compare through a symlinked figure",
        "compare",
        {"summary.json": summary_with(figures=[{"name": "x", "file": "figures/00-x.png"}])},
        "figures/00-x.png",
        "outside",
        links={"r/figures/00-x.png": "/etc/passwd"},
    ),
    folder_case(
        "report through a symlinked figure folder",
        "report",
        {"summary.json": summary_with(figures=[{"name": "x", "file": "figures/passwd"}])},
        "outside",
        links={"r/figures": "/etc"},
    ),
    folder_case(
        "report through a symlinked latent-map sprite",
        "report",
        {
            "summary.json": summary_with(figures=[]),
            "figures/latent-map.json": '{"points": [], "classes": [], "cols": 1, "tile": [8, 8]}',
        },
        "sprite",
        "outside",
        links={"r/figures/latent-map-sprite.png": "/etc/passwd"},
    ),
    summary_case("summary metrics a list", "report", summary_with(metrics=[1, 2]), "metrics"),
    summary_case(
        "summary metric a string",
        "compare",
        summary_with(metrics={"val.loss": "0.1"}),
        "metrics.val.loss",
    ),
    summary_case("summary figures a string", "report", summary_with(figures="all"), "figures"),
    summary_case(
        "summary figure without a file",
        "report",
        summary_with(figures=[{"name": "x"}]),
        "figures.0.file",
    ),
    summary_case("summary name a number", "compare", summary_with(name=7), "name"),
    summary_case(
        "summary timings of text", "compare", summary_with(timings={"train": "1 s"}), "timings"
    ),
    summary_case("summary a list", "report", "[1, 2, 3]", "not a replab run summary"),
    summary_case("summary not UTF-8", "compare", b'{"name": "caf\xe9"}', "not UTF-8"),
    summary_case("summary in UTF-16", "report", '{"metrics": {}}'.encode("utf-16"), "not UTF-8"),
    summary_case(
        "summary nested absurdly deep", "report", "[" * 100_000 + "]" * 100_000, "too deeply"
    ),
    folder_case(
        "latent map of the wrong shape",
        "report",
        {
            "summary.json": summary_with(figures=[]),
            "figures/latent-map.json": '{"points": "all", "classes": [], "cols": 1, "tile": [8]}',
        },
        "latent-map.json",
        "points",
    ),
    folder_case(
        "status a list",
        "resume",
        {"status.json": "[1, 2]", "last.pt": run_file("last.pt")},
        "status.json",
    ),
    folder_case(
        "status pid a string",
        "resume",
        {"status.json": '{"state": "running", "pid": "1; rm -rf /"}'},
        "status.json",
        "pid",
    ),
    folder_case("status not JSON", "resume", {"status.json": "{state: running"}, "status.json"),
    folder_case(
        "resume a finished run",
        "resume",
        {
            "summary.json": run_file("summary.json"),
            "status.json": run_file("status.json"),
            "last.pt": run_file("last.pt"),
        },
        "already finished",
        "replab report",
    ),
    folder_case(
        "resume a run another process writes",
        "resume",
        {"last.pt": run_file("last.pt")},
        "being written by another process",
        "pid",
        locked="r",
    ),
    Case(
        "resume with a config of Python tags",
        ("run", "--resume", "{tmp}/r"),
        ("not valid YAML",),
        {"r/config.yaml": "seed: !!python/object/apply:os.system ['touch {tmp}/PWNED']\n"},
        marker=True,
    ),
    Case(
        "resume with a config not UTF-8",
        ("run", "--resume", "{tmp}/r"),
        ("not UTF-8",),
        {"r/config.yaml": b"name: caf\xe9\n"},
    ),
    study_case("study.json a list", "[1]", "study.json", "the top level"),
    study_case("study.json seeds of text", '{"study": "a", "seeds": ["0"]}', "seeds"),
    study_case("study.json without seeds", '{"study": "a"}', "seeds"),
    study_case("study.json not JSON", "{study: a", "not valid JSON"),
    Case("resume a folder that is not a study", ("study", "--resume", "{tmp}"), ("study.json",)),
    Case(
        "resume a study another process runs",
        ("study", "--resume", "{tmp}/s"),
        ("being written by another process", "study folder"),
        {"s/study.json": '{"study": "b", "seeds": [0], "quick": true}'},
        locked="s",
    ),
    Case(
        "--over of a missing date",
        ("sweep", "digits-autoencoder", "--over", "seed=[2026-02-30]", "--runs-dir", "{tmp}/r"),
        ("--over", "day is out of range"),
    ),
    tune_case("tune.json a list", "[1]", "tune.json"),
    tune_case(
        "tune.json trials of text",
        '{"recipe": {}, "recipe_source": "x", "space": {}, "trials": "ten"}',
        "trials",
    ),
    tune_case("tune.json not UTF-8", b"\xff\xfe{", "not UTF-8"),
    # --- checkpoints whose state does not fit (issue 17) --------------------------------------
    resume_case(
        "last.pt optimizer moments of another shape",
        checkpoint_with(optimizer=wrong_moments),
        "damaged training state",
        "shape (7, 7)",
    ),
    resume_case(
        "last.pt early stopping setting attributes",
        checkpoint_with(stopper=lambda s: {**s["stopper"], "__class__": "x", "update": 1}),
        "unknown keys",
    ),
    resume_case(
        "last.pt early stopping patience text",
        checkpoint_with(stopper=lambda s: {**s["stopper"], "patience": "3"}),
        "patience",
    ),
    resume_case("last.pt history a string", checkpoint_with(history="epochs"), "history"),
    resume_case(
        "last.pt random state of floats",
        checkpoint_with(torch_rng=torch.zeros(8)),
        "random-number state",
    ),
    resume_case(
        "last.pt best weights of another shape",
        checkpoint_with(best_state=lambda s: {k: torch.zeros(2) for k in s["model"]}),
        "best_state",
        "does not fit",
    ),
    resume_case(
        "last.pt with an extra weight",
        checkpoint_with(model=lambda s: {**s["model"], "extra.weight": torch.zeros(1)}),
        "unexpected ['extra.weight']",
    ),
    # --- parsers (issue 17) ------------------------------------------------------------------
    recipe_case(
        "a date that does not exist", BASE + "description: 2026-02-30\n", "day is out of range"
    ),
    recipe_case("a key given twice", BASE + "seed: 1\nseed: 2\n", "'seed' twice"),
    recipe_case("an int tag on text", BASE + "seed: !!int many\n", "not what its type says"),
    Case("override of a missing date", run("seed=2026-02-30"), ("day is out of range",)),
    Case(
        "override with a key twice",
        run("trainer.optimizer={lr: 0.1, lr: 0.2}"),
        ("'lr' twice",),
    ),
    Case("recipe name too long", run("x" * 5000), ("cannot be opened",)),
    Case("device tpu", run("data.device=tpu"), ("data.device",)),
    Case("device with a shell command", run("data.device=cpu; rm -rf /"), ("data.device",)),
    Case(
        "--set of a missing date",
        ("study", "b", "--set", "ks=2026-02-30", "--runs-dir", "{tmp}/runs"),
        ("--set ks", "day is out of range"),
    ),
    Case(
        "--enqueue of a missing date",
        tune("--enqueue", "{trainer.optimizer.lr: 2026-02-30}", "--runs-dir", "{tmp}/runs"),
        ("--enqueue", "day is out of range"),
        {"space.yaml": SPACE_OK},
    ),
    Case(
        "search space with a missing date",
        tune("--runs-dir", "{tmp}/runs"),
        ("search space", "month must be in 1..12"),
        {"space.yaml": "trainer.optimizer.lr: {type: float, low: 2026-13-01, high: 1}\n"},
    ),
    Case(
        "search space key twice",
        tune("--runs-dir", "{tmp}/runs"),
        ("search space", "twice"),
        {"space.yaml": SPACE_OK + SPACE_OK},
    ),
    Case(
        "search space name too long",
        ("tune", "digits-autoencoder", "--space", "s" * 5000, "--trials", "1"),
        ("cannot be opened",),
    ),
    # --- the command line (issue 17) -----------------------------------------------------------
    Case(
        "study runs-dir is a file",
        ("study", "b", "--quick", "--runs-dir", "{tmp}/afile"),
        ("cannot write", "--runs-dir"),
        {"afile": "x"},
    ),
    Case(
        "sweep runs-dir is a file",
        ("sweep", "digits-autoencoder", "--over", "seed=[0,1]", "--runs-dir", "{tmp}/afile"),
        ("cannot write", "--runs-dir"),
        {"afile": "x"},
    ),
    Case(
        "tune runs-dir is a file",
        tune("--runs-dir", "{tmp}/afile"),
        ("cannot write", "--runs-dir"),
        {"afile": "x", "space.yaml": SPACE_OK},
    ),
]


def materialise(case: Case, ctx: Ctx) -> list[str]:
    for rel, content in case.files.items():
        path = ctx.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        value = content(ctx) if callable(content) else content
        if isinstance(value, str):
            value = ctx.fmt(value).encode()
        path.write_bytes(value)
    for rel, target in case.links.items():
        path = ctx.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return [ctx.fmt(a) for a in case.argv]


def snapshot(*folders: Path | None) -> dict[str, bytes | str]:
    """Every file's bytes (and every folder and link) under ``folders``: what a refused command
    must leave exactly as it was."""
    state: dict[str, bytes | str] = {}
    for folder in filter(None, folders):
        for path in sorted(folder.rglob("*")):
            key = str(path)
            if path.is_symlink():
                state[key] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                state[key] = "dir"
            else:
                state[key] = path.read_bytes()
    return state


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("finished")
    assert (
        main(
            [
                "run",
                "trainer.epochs=1",
                "probe.enabled=false",
                "analysis.enabled=false",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    (run_dir,) = runs.iterdir()
    return run_dir


PARAMS = [
    pytest.param(case, id=case.name, marks=[pytest.mark.data] if "data" in case.needs else [])
    for case in CORPUS
]


@pytest.mark.parametrize("case", PARAMS)
def test_hostile_input_is_one_clear_error(case: Case, tmp_path, request, capsys):
    ctx = Ctx(tmp_path / "case")
    ctx.tmp.mkdir()
    if "run" in case.needs:
        ctx.run = request.getfixturevalue("finished_run")
    if "data" in case.needs:
        ctx.data = request.getfixturevalue("data_dir")
    argv = materialise(case, ctx)
    capsys.readouterr()
    with contextlib.ExitStack() as held:
        if case.locked:
            held.enter_context(folder_lock(ctx.tmp / case.locked))
        before = snapshot(ctx.tmp, ctx.run)
        started = time.perf_counter()
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors exit from inside parse_args
            code = exit_.code
        seconds = time.perf_counter() - started
        after = snapshot(ctx.tmp, ctx.run)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("replab: error:")]
    assert len(errors) == 1 and "Fix:" in errors[0], err  # one line: the problem and the fix
    changed = sorted(set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]})
    assert not changed, f"the refused command changed {changed[:5]}"
    for fragment in case.expect:
        assert ctx.fmt(fragment).lower() in err.lower(), (fragment, err)
    assert not (ctx.tmp / "PWNED").exists(), "the input ran code"
    assert seconds < 30, f"refusing took {seconds:.1f} s"


# A representative subset through the real entry point: nothing at all may print a traceback.
# Each is a fresh interpreter (seconds of imports), so only the first few run by default.
SUBPROCESS = [
    "billion laughs",
    "last.pt running code",
    "seeds not a number",
    "deeply nested",
    "binary garbage",
    "python object tag",
    "epochs 1e99",
    "runs-dir is a file",
    "resume a missing folder",
]
DEFAULT_SUBPROCESS = 3


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=[pytest.mark.slow] if i >= DEFAULT_SUBPROCESS else [])
        for i, n in enumerate(SUBPROCESS)
    ],
)
def test_hostile_input_through_the_real_process(name, tmp_path, request):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    case = next(case for case in CORPUS if case.name == name)
    ctx = Ctx(
        tmp_path / "case",
        run=request.getfixturevalue("finished_run") if "run" in case.needs else None,
    )
    ctx.tmp.mkdir()
    argv = materialise(case, ctx)
    proc = subprocess.run(
        [sys.executable, "-m", "replab.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert "Fix:" in proc.stderr, proc.stderr
    for fragment in case.expect:
        assert ctx.fmt(fragment).lower() in proc.stderr.lower(), (fragment, proc.stderr)
    assert not (ctx.tmp / "PWNED").exists()


def test_the_corpus_names_are_unique_and_the_evil_payload_is_live(tmp_path):
    assert len({c.name for c in CORPUS}) == len(CORPUS)
    pickle.loads(evil_pickle(Ctx(tmp_path)))  # the payload is real: unrestricted unpickling runs it
    assert (tmp_path / "PWNED").exists()
    shutil.rmtree(tmp_path)
