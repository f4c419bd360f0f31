"""replab's jobs as Python functions: what ``replab run|study|sweep|tune`` do, for notebooks.

The command line is a thin layer over these::

    import replab.api as rl
    run = rl.run("digits-autoencoder", "trainer.epochs=5")
    run.metrics["probe.test_accuracy"], run.report
    again = rl.load(run.dir)               # a finished run folder, written by either

Every function validates its arguments before any folder is created, and raises
``replab.errors.ReplabError`` (problem and fix) on bad input. Jobs called from several threads
of one process take turns, so each gets the metrics it gets alone (see ``run``).
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import os
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import torch
from torch import nn

from replab.data import DATASETS, DeviceLoader, Normalizer, Splits, load_splits
from replab.data.load import recorded_root
from replab.errors import ReplabError
from replab.evaluation import embed
from replab.evaluation.embed import GivenEncoder
from replab.io import LOGGER, Log
from replab.recipes import spec_for
from replab.registry import load_plugins
from replab.reporting.study_report import StudyReport
from replab.runs import rundir
from replab.runs.analyze import analysis_spec, analyze_encoder, load_encoder
from replab.runs.lifecycle import run_experiment
from replab.runs.prepare import held, load_data
from replab.runs.weights import load_run_task
from replab.search.sweep import parse_axis, run_sweep
from replab.search.tune import TuneResult, resume_tune, start_tune
from replab.spec import ExperimentSpec
from replab.studies.runner import run_study
from replab.tasks import Task
from replab.training import distributed, evaluate, resolve_device


def default_runs_dir() -> Path:
    return Path(os.environ.get("REPLAB_RUNS", "runs"))


# Jobs in one process take turns. A run seeds the process's random generators (torch, numpy,
# random) when it starts and draws from them to its end, so two runs at once in threads would
# draw from each other's streams and silently get other metrics than each gets alone.
_TURN = threading.RLock()
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_at_a_time(job: Callable[_P, _R]) -> Callable[_P, _R]:
    """``job`` holding the process's turn: jobs called from several threads run one after
    another, each exactly as it runs alone; one that has to wait says so in its log."""

    @functools.wraps(job)
    def in_turn(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not _TURN.acquire(blocking=False):
            log = kwargs.get("log")
            (log if callable(log) else _quiet)(
                "waiting: another replab job is running in this process, and jobs in one "
                "process run one after another"
            )
            _TURN.acquire()
        try:
            return job(*args, **kwargs)
        finally:
            _TURN.release()

    return in_turn


@dataclass(frozen=True)
class Run:
    """A finished run folder: its recipe, summary, per-epoch history, report and trained model.

    The model is rebuilt from ``config.yaml`` and loaded from the weights the run evaluated
    on test (``weights_only``: tensors, never code), on first use. A config naming your own
    code by import path (``model.encoder.name: mynets:Enc``) is refused unless ``trust_code``:
    the folder may come from someone else (``load(dir, trust_code=True)``).
    """

    dir: Path
    trust_code: bool = False

    @property
    def spec(self) -> ExperimentSpec:
        return rundir.open_existing(self.dir, self.trust_code)

    @property
    def summary(self) -> dict:
        return rundir.read_summary(self.dir)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.summary["metrics"])

    @property
    def history(self) -> list[dict]:
        """One record per epoch: epoch, the train.* and val.* metrics under the names the
        summary gives them (docs/metrics.md; metrics.jsonl spells them train_loss, val_loss),
        seconds, lr where recorded, best."""
        return [
            {rundir.metric_name(k): v for k, v in record.items()}
            for record in rundir.read_metrics(self.dir)
        ]

    @property
    def report(self) -> Path:
        return self.dir / rundir.REPORT

    @functools.cached_property
    def task(self) -> Task:
        return load_run_task(self.dir, trust_code=self.trust_code)[0]

    @property
    def model(self) -> nn.Module:
        """The whole trained model (encoder with its decoder, head or projection), eval mode."""
        return self.task.model

    @property
    def encoder(self) -> nn.Module:
        """The trained encoder, eval mode: images (normalised as the run did) to latents."""
        return self.task.encoder

    @functools.cached_property
    def data(self) -> tuple[Splits, Normalizer]:
        """The run's splits and pixel normalizer, exactly as it trained and evaluated: read
        from where the run found them (its summary records the folder), before $REPLAB_DATA."""
        spec = self.spec
        if spec.data.root is None:
            found = recorded_root(spec.data.dataset, str(self.summary.get("data") or ""))
            if found is not None:
                data = spec.data.model_copy(update={"root": str(found)})
                spec = spec.model_copy(update={"data": data})
        return load_data(spec)

    def embed(self, images: torch.Tensor | str = "test", batch_size: int = 1024) -> torch.Tensor:
        """Latent vectors (N x d) of ``images``: a tensor N x C x H x W (uint8 pixels, or
        floats in [0, 1]) of the run's image shape, one of the run's own splits (``train``,
        ``val``, ``test``), or another dataset by name (its test split, at the run's image
        size and channels). Anything else (floats outside [0, 1], an empty tensor, another
        shape, an unknown name) is a ReplabError."""
        splits, normalizer = self.data
        shape = tuple(splits.test.shape)
        if isinstance(images, str):
            if images in SPLITS:
                pixels = held(getattr(splits, images), len(getattr(splits, images))).images
            else:
                _not_a_split(images)
                pixels = self._test_images_of(images)
        else:
            pixels = _as_uint8(images, shape)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ReplabError(f"batch_size={batch_size!r}", "pass a whole number of at least 1")
        try:
            return embed(self.encoder, pixels, normalizer, torch.device("cpu"), batch_size)
        except RuntimeError as err:
            first = (str(err).splitlines() or [""])[0][:200]
            raise ReplabError(
                f"this run's encoder cannot take images of shape "
                f"{tuple(pixels.shape[1:])}: {first}",
                f"pass images shaped like the run's {shape}",
            ) from None

    def _test_images_of(self, dataset: str) -> torch.Tensor:
        d = self.spec.data
        shape = self.data[0].test.shape  # C x H x W the encoder was trained on
        other = load_splits(
            dataset,
            root=d.root,
            download=d.download,
            seed=self.spec.seed,
            image_size=int(shape[-1]) if shape[-1] == shape[-2] else None,
            channels=int(shape[0]),
        )
        return held(other.test, len(other.test)).images

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """The task's metrics on a split, recomputed from the loaded weights (``test.loss``,
        ``test.mae`` ...): what the summary recorded, reproduced."""
        splits, normalizer = self.data
        if split not in SPLITS:
            raise ReplabError(f"a run has no split {split!r}", "use 'train', 'val' or 'test'")
        part = held(getattr(splits, split), len(getattr(splits, split)))
        loader = DeviceLoader(part.images, part.labels, 1024, shuffle=False, normalizer=normalizer)
        raw = evaluate(self.task, self.model, loader, torch.device("cpu"), "off", split)
        return {k.replace("_", ".", 1): v for k, v in raw.items()}

    def show(self, full: bool = False, height: int = 800) -> Any:
        """The run in Jupyter: by default a compact card (name, data, headline metrics, the
        loss curves as an image read from the run folder, a link to report.html), a few KB
        in the saved notebook; ``full=True`` puts the whole report inline (an IFrame of the
        self-contained report.html, about 1 MB with its figures).

        The folder's HTML may come from someone else: the full report's frame is sandboxed,
        its scripts (the report's own interactive map) run in an origin of their own, with no
        access to the notebook's page, cookies or kernel."""
        from IPython.display import HTML

        if not full:
            return HTML(_card(self.dir, self.summary))
        page = html.escape(self.report.read_text(encoding="utf-8"), quote=True)
        # IPython suggests IFrame(src=...), which needs a server; srcdoc keeps it self-contained.
        warnings.filterwarnings("ignore", message="Consider using IPython.display.IFrame")
        return HTML(
            f'<iframe srcdoc="{page}" sandbox="allow-scripts" width="100%" height="{height}" '
            'style="border:1px solid #ddd"></iframe>'
        )


CARD_METRICS = 12  # the metrics a card lists; report.html has them all


def _card(run_dir: Path, summary: dict) -> str:
    """``Run.show()``'s compact HTML: the report and figures are linked from the run folder
    (relative to the notebook's folder, which Jupyter serves), never embedded."""
    esc = html.escape
    where = Path(os.path.relpath(run_dir.resolve(), Path.cwd()))
    served = not where.as_posix().startswith("..")  # Jupyter serves the notebook's folder only
    report = (where / rundir.REPORT).as_posix()
    metrics = summary.get("metrics") or {}
    # the held-out figures first: test metrics and the probes', then the rest in their order
    first = sorted(metrics, key=lambda k: not k.startswith(("test.", "probe")))
    rows = "".join(
        f"<tr><td>{esc(str(k))}</td><td>{_number(metrics[k])}</td></tr>"
        for k in first[:CARD_METRICS]
    )
    curves = next(
        (f["file"] for f in summary.get("figures") or [] if "curve" in str(f.get("name"))), None
    )
    image = (
        f'<img src="{esc((where / curves).as_posix())}" style="max-width:420px">'
        if served and curves
        else ""
    )
    link = f'<a href="{esc(report)}" target="_blank">report.html</a>' if served else "report.html"
    warned = len(summary.get("warnings") or [])
    return (
        f'<div style="font-size:13px"><b>{esc(str(summary.get("name", run_dir.name)))}</b> '
        f"({esc(str(summary.get('state', '')))}): {esc(str(summary.get('data', '')))}"
        f'<table style="margin:6px 0">{rows}</table>{image}'
        f"<div>the full report: {link} in <code>{esc(str(run_dir))}</code>"
        + (f"; {warned} warning(s) in summary.json" if warned else "")
        + " &middot; <code>run.show(full=True)</code> shows it here</div></div>"
    )


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else ""


SPLITS = ("train", "val", "test")


def _not_a_split(name: object) -> None:
    """Refuses ``name`` if it is no dataset and looks like a misspelt split (``tset``)."""
    if not isinstance(name, str):
        raise ReplabError(
            f"a split or dataset is named by a string, not a {type(name).__name__}",
            "pass 'train', 'val', 'test' or a dataset's name",
        )
    near = difflib.get_close_matches(name.lower(), SPLITS, n=1, cutoff=0.6)
    if near and name not in DATASETS.names():
        raise ReplabError(
            f"{name!r} is neither one of the run's splits ({', '.join(SPLITS)}) nor a dataset",
            f"use {near[0]!r} (a run's own splits are train, val and test)",
        )


def _as_uint8(images: object, shape: tuple[int, ...]) -> torch.Tensor:
    """``images`` as uint8 pixels, refused unless they are N >= 1 images of ``shape``
    (C x H x W), uint8 or floats in [0, 1]: nothing is clamped or guessed."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = (
            f"a tensor of shape {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else f"a {type(images).__name__}"
        )
        raise ReplabError(
            f"images must be a tensor N x C x H x W, not {got}",
            "pass uint8 pixels or floats in [0, 1], e.g. torch.stack(list_of_images) "
            "(torch.from_numpy(array) for a NumPy array)",
        )
    if len(images) == 0:
        raise ReplabError(
            f"there are no images to embed (a tensor of shape {tuple(images.shape)})",
            "pass at least one image",
        )
    if tuple(images.shape[1:]) != shape:
        raise ReplabError(
            f"this run's encoder takes images of shape {shape} (C x H x W), "
            f"not {tuple(images.shape[1:])}",
            f"pass images shaped {shape}, or name a dataset (run.embed('mnist')) to have its "
            "test images brought to that shape",
        )
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ReplabError(
            f"images of dtype {images.dtype} are neither uint8 pixels nor floats in [0, 1]",
            "convert them: images.to(torch.uint8) for 0-255 values, images.float() for 0-1 ones",
        )
    lo, hi = float(images.min()), float(images.max())
    if not (lo >= 0 and hi <= 1):  # NaN fails both
        raise ReplabError(
            f"float images must be in [0, 1], but these range from {lo:g} to {hi:g}"
            + (" (0-255 pixel values?)" if 1 < hi <= 255 and lo >= 0 else ""),
            "images must be uint8 0-255 or float in [0, 1]: divide 0-255 floats by 255, or "
            "pass them as uint8 (images.round().to(torch.uint8))",
        )
    return (images.float() * 255).round().to(torch.uint8)


def load(run_dir: str | Path, trust_code: bool = False) -> Run:
    """A finished run folder (from ``run`` or the command line); errors say if it is not one.

    The folder is data: a config naming code by import path is rebuilt (``.encoder``,
    ``.model``, ``.embed``) only with ``trust_code=True``, if you trust whoever made it."""
    _check_trust(trust_code)
    run = Run(Path(run_dir), trust_code)
    run.summary  # noqa: B018 - reads and checks summary.json now, not on first use
    return run


@_one_at_a_time
def analyze(
    encoder: nn.Module | str | Path,
    data: str = "digits",
    *overrides: str,
    decoder: nn.Module | None = None,
    name: str | None = None,
    data_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    log: Log | None = None,
    trust_code: bool = False,
) -> Run:
    """The whole latent-space analysis of ``encoder`` on dataset ``data`` (``replab analyze``).

    ``encoder``: a module mapping a batch of images to vectors, a TorchScript file, or a
    finished run folder. Linear and MLP probes on the frozen latents, kNN accuracy,
    separability, PCA, t-SNE with hover images; with a ``decoder`` (vectors to images) also
    reconstructions, interpolation, traversal and samples. ``overrides`` set ``data.*``,
    ``probe.*`` and ``analysis.*`` keys as in a recipe. Returns the run folder.
    The encoder is checked on every batch: what it raises, or an output that is not one
    finite vector per image, is one ReplabError naming it. A folder or file is data: a run
    whose config names code by import path, or a .pt2 holding more than torch operators and
    tensors, is opened only with ``trust_code=True`` (docs/python-api.md).
    """
    _ensure_plugins()
    _check_trust(trust_code)
    _check_arguments(data_dir=data_dir, runs_dir=runs_dir, log=log)
    if not isinstance(data, str) or not data:
        raise ReplabError(
            f"data={data!r} is not a dataset's name", "name one, e.g. 'digits' or 'mnist'"
        )
    if name is not None and not isinstance(name, str):
        raise ReplabError(f"name={name!r} is not a string", "pass a short label, or leave it out")
    if decoder is not None and not isinstance(decoder, nn.Module):
        raise ReplabError(
            f"the decoder is not a torch.nn.Module but {type(decoder).__name__}",
            "pass a module that maps vectors to images, or leave decoder out",
        )
    settings = _settings(overrides, "override", "analysis.tsne_sample=2000")
    label = name
    if isinstance(encoder, str | Path):
        encoder, found, stem = load_encoder(encoder, trust_code)
        decoder = decoder if decoder is not None else found
        label = label or stem
    label = label or type(encoder).__name__
    extra = [f"data.root={data_dir}"] if data_dir else []
    spec = analysis_spec(label, data, [*settings, *extra])
    given = GivenEncoder(encoder) if isinstance(encoder, nn.Module) else encoder
    result = analyze_encoder(
        given, spec, decoder, Path(runs_dir or default_runs_dir()), log=log or _quiet
    )
    assert result.run_dir is not None
    return Run(result.run_dir)


run_spec = spec_for  # the spec ``run`` would train, validated


@_one_at_a_time
def run(
    recipe: str | Path | None = None,
    *overrides: str,
    data_dir: str | Path | None = None,
    runs_dir: str | Path | None = None,
    resume: str | Path | None = None,
    log: Log | None = None,
    trust_code: bool = False,
) -> Run | None:
    """Train, evaluate and report one recipe (``replab run``); returns the finished run.

    ``resume`` continues an interrupted run folder exactly as it was configured; a folder
    whose config names code by import path is refused unless ``trust_code`` (it may come from
    anyone). Code the recipe or overrides name is the caller's own, so the returned run
    rebuilds it. Under
    ``torchrun`` every process calls this; rank 0 alone writes the folder, and the other ranks
    of a new run get None.

    Jobs called from several threads of one process (``run``, ``analyze``, ``sweep``,
    ``study``) run one after another, each getting the metrics it gets alone; for runs at
    once use ``jobs=`` of sweep and study, or separate processes.
    """
    _ensure_plugins()
    _check_trust(trust_code)
    _check_arguments(data_dir=data_dir, runs_dir=runs_dir, resume=resume, log=log)
    _check_recipe(recipe, required=False)
    overrides = tuple(_settings(overrides, "override", "trainer.epochs=5"))
    if resume is not None:
        if recipe is not None or overrides or data_dir:
            raise ReplabError(
                "resume continues a run exactly as it was configured",
                "drop the recipe and overrides, or start a new run without resume",
            )
        spec = rundir.open_existing(Path(resume), trust_code)
    else:
        spec = run_spec(recipe, overrides, data_dir)
    with distributed.session(resolve_device(spec.data.device).type):
        result = run_experiment(
            spec,
            runs_dir=Path(runs_dir or default_runs_dir()),
            resume=Path(resume) if resume else None,
            log=log or _quiet,
        )
    # Under torchrun, ranks > 0 of a new run never learn the folder rank 0 creates.
    if result.run_dir is None:
        return None
    # a new run's code is what the caller named this time; a resumed one's is trusted as told
    return Run(result.run_dir, trust_code=trust_code or resume is None)


@dataclass(frozen=True)
class StudyResult:
    """A finished study: its folder, its report and the wall time it took."""

    dir: Path
    report: StudyReport
    seconds: float

    @property
    def table(self) -> list[dict]:
        """The reference table: part, metric, reference, mean, std, n, delta per row."""
        return list(self.report.reference)

    @property
    def html(self) -> Path:
        return self.dir / "study.html"


@_one_at_a_time
def study(
    name: str | None = None,
    *,
    quick: bool = False,
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: str | Path | None = None,
    log: Log | None = None,
    jobs: int = 1,
    trust_code: bool = False,
    **options: Any,
) -> StudyResult:
    """Run (or ``resume``) a whole study (``replab study``).

    ``options`` are the study's own settings (``study("a", dataset="cifar10")``, ``ks=[2, 32]``
    for study b; ``replab study --help`` lists each study's); ``overrides`` are
    ``PART:KEY=VALUE`` recipe changes for one part (``*`` for all). ``jobs``: runs trained at
    once, each in its own process with its share of the CPUs (docs/studies.md). A study
    folder to ``resume`` is data: code its study.json or run folders name by import path is
    imported only with ``trust_code=True``.
    """
    _ensure_plugins()
    _check_trust(trust_code)
    _check_arguments(data_dir=data_dir, runs_dir=runs_dir, resume=resume, log=log)
    if name is not None and not isinstance(name, str):
        raise ReplabError(
            f"a study is named by a string, not by {name!r} ({type(name).__name__})",
            "name one, e.g. study('a') or study('b', quick=True)",
        )
    _whole(jobs, "jobs")
    if seeds is not None:
        _whole(seeds, "seeds")
    overrides = _settings(overrides, "override", "A3:trainer.epochs=15")
    if resume is not None and (name or options or quick or overrides):
        raise ReplabError(
            "resume continues a study exactly as it was started",
            "pass only the study folder to resume (and seeds to add seeds)",
        )
    if resume is None and not name:
        raise ReplabError(
            "which study? none was named", "name one, e.g. study('a') or study('b', quick=True)"
        )
    folder, report, seconds = run_study(
        name,
        dict(options),
        quick,
        seeds,
        Path(runs_dir or default_runs_dir()),
        str(data_dir) if data_dir else None,
        Path(resume) if resume else None,
        list(overrides),
        log=log or _quiet,
        jobs=jobs,
        trust_code=trust_code,
    )
    return StudyResult(folder, report, seconds)


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: its folder and one row per run (values, run folder, metrics)."""

    dir: Path

    @property
    def table(self) -> list[dict]:
        return list(json.loads((self.dir / "sweep.json").read_text(encoding="utf-8"))["runs"])

    @property
    def html(self) -> Path:
        return self.dir / "study.html"


@_one_at_a_time
def sweep(
    recipe: str | Path,
    over: Sequence[str],
    *overrides: str,
    runs_dir: str | Path | None = None,
    log: Log | None = None,
    jobs: int = 1,
) -> SweepResult:
    """One run per value of each ``over`` key (``KEY=[V1,V2]``; several make a grid);
    ``jobs`` runs at once in worker processes. One string for ``over`` is one axis."""
    _ensure_plugins()
    _check_arguments(runs_dir=runs_dir, log=log)
    _check_recipe(recipe, required=True)
    _whole(jobs, "jobs")
    axes = [parse_axis(text) for text in _settings(over, "axis", "model.encoder.latent_dim=[2,8]")]
    folder = run_sweep(
        Path(recipe),
        axes,
        _settings(overrides, "override", "trainer.epochs=5"),
        Path(runs_dir or default_runs_dir()),
        log=log or _quiet,
        jobs=jobs,
    )
    return SweepResult(folder)


@_one_at_a_time
def tune(
    recipe: str | Path | None = None,
    space: str | Path | None = None,
    trials: int | None = None,
    *overrides: str,
    resume: str | Path | None = None,
    runs_dir: str | Path | None = None,
    study_dir: str | Path | None = None,
    storage: str | None = None,
    log: Log | None = None,
    jobs: int = 1,
    trust_code: bool = False,
    **options,
) -> TuneResult:
    """An Optuna search over ``space`` (``replab tune``), or ``resume`` one; see docs/tuning.md.

    ``options``: metric, direction, study_name, seed, prune, prune_startup, prune_warmup,
    enqueue (a list of points), as the command's flags. ``jobs``: local worker processes
    sharing the study (and the CPUs). A study folder to ``resume`` is data: code its
    tune.json names by import path is imported only with ``trust_code=True``.
    """
    _ensure_plugins()
    _check_trust(trust_code)
    log = log or _quiet
    if resume is not None:
        return resume_tune(Path(resume), trials, storage, log=log, jobs=jobs, trust_code=trust_code)
    if not recipe or not space or trials is None:
        raise ReplabError(
            "tune needs a recipe, a search space and a trial count",
            "e.g. tune('digits-autoencoder', 'space.yaml', 20)",
        )
    return start_tune(
        recipe,
        space,
        trials,
        list(overrides),
        Path(runs_dir or default_runs_dir()),
        Path(study_dir) if study_dir else None,
        log=log,
        storage=storage,
        jobs=jobs,
        **options,
    )


@functools.cache
def _ensure_plugins() -> None:
    """The plugins ``$REPLAB_PLUGINS`` names (comma-separated, or ``all``), loaded once (a
    failed load is not remembered: the next job reports it again)."""
    load_plugins(os.environ.get("REPLAB_PLUGINS"))


def _check_trust(trust_code: object) -> None:
    if not isinstance(trust_code, bool):
        raise ReplabError(
            f"trust_code={trust_code!r} is not True or False",
            "pass trust_code=True only for a folder or file whose maker you trust",
        )


def _quiet(message: str) -> None:
    """The default log of the Python API: the ``replab`` logger at INFO, silent unless the
    application configures logging (the command line passes a printer). What the user must
    see comes as a ``ReplabWarning`` whatever the log."""
    LOGGER.info(message)


# The start of a KEY=VALUE setting: a key path (PART: before it in a study's overrides).
_SETTING = r"[A-Za-z_*][\w.*:-]*="


def _settings(values: object, what: str, example: str) -> list[str]:
    """``values`` (overrides, sweep axes) as a list of strings, one setting each. A lone
    string is one setting; a string holding several space-separated KEY=VALUE settings (which
    would be read as the first one's value) or an item that is not a string is refused."""
    items = [values] if isinstance(values, str) else values
    if not isinstance(items, Sequence):
        raise ReplabError(
            f"the {what}s given, {values!r:.80}, are not strings but {type(values).__name__}",
            f"pass each {what} as a string, e.g. {example!r}",
        )
    for item in items:
        if not isinstance(item, str):
            unpack = " (unpack a list of them with *)" if isinstance(item, list | tuple) else ""
            raise ReplabError(
                f"the {what} {item!r:.80} is not a string but {type(item).__name__}",
                f"pass each {what} as its own string, e.g. {example!r}{unpack}",
            )
        value = item.partition("=")[2].lstrip()
        parts = re.split(rf"\s+(?={_SETTING})", item.strip())
        if len(parts) > 1 and value[:1] not in ("'", '"'):
            raise ReplabError(
                f"the {what} {item!r} holds {len(parts)} KEY=VALUE settings in one string",
                f"pass each as its own string: {', '.join(map(repr, parts))} (a value that "
                "holds ' KEY=' itself is quoted: KEY='...')",
            )
    return list(items)


def _check_recipe(recipe: object, required: bool) -> None:
    if recipe is None and not required:
        return
    if isinstance(recipe, dict):
        raise ReplabError(
            "a recipe given as a dict is not supported",
            "write it to a YAML file and pass its path, or pass a bundled recipe's name and "
            "KEY=VALUE overrides",
        )
    if not isinstance(recipe, str | os.PathLike) or not str(recipe).strip():
        raise ReplabError(
            f"the recipe {recipe!r} ({type(recipe).__name__}) is not a recipe's name or file",
            "pass a bundled recipe's name, e.g. 'digits-autoencoder', or a YAML file's path",
        )


def _check_arguments(log: Log | None = None, **paths: object) -> None:
    """Folder arguments are paths (or None) and ``log`` is a function (or None)."""
    for what, value in paths.items():
        if value is not None and not isinstance(value, str | os.PathLike):
            raise ReplabError(
                f"{what}={value!r} is not a path but {type(value).__name__}",
                f"pass {what} as a string or a pathlib.Path",
            )
    if log is not None and not callable(log):
        raise ReplabError(
            f"log={log!r} is not a function", "pass a function of one string, e.g. log=print"
        )


def _whole(value: object, what: str) -> None:
    """A count (jobs, seeds) is an int; its range is checked where it is used."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReplabError(
            f"{what}={value!r} is not a whole number", f"pass {what} as an int, e.g. {what}=2"
        )
