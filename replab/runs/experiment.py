"""One experiment, end to end: data -> training -> evaluation -> run folder and report."""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import replab
from replab.data import DeviceLoader, Normalizer, Splits, cache_dir, load_splits
from replab.errors import ConfigError, DiskFullError, ReplabError
from replab.evaluation import Latents, embed, reconstruct, reconstruction_metrics, train_probe
from replab.evaluation.analysis import SPACES, analyse
from replab.evaluation.image_ahead import ImageSpaceAhead
from replab.evaluation.metrics import classification_report
from replab.evaluation.probe import finetune_probe, predictions
from replab.evaluation.trail import ReconstructionTrail
from replab.io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    folder_lock,
    remove_stale_temp_files,
)
from replab.reporting import figures, write_run_report
from replab.reporting.latent_figures import analysis_figures, hover_map, tsne_points
from replab.runs import rundir
from replab.runs.tracking import RunTracker
from replab.spec import Component, ExperimentSpec, reference_note, same_training, spec_to_yaml
from replab.tasks import Task, build_task
from replab.training import (
    Trainer,
    check_trainer_spec,
    distributed,
    resolve_device,
    seed_everything,
)
from replab.training.threads import CpuShare, share_cpus

ANALYSIS_CACHE = "analysis"  # the space cache's folder in replab's cache


@dataclass
class RunResult:
    run_dir: Path | None  # None on ranks > 0 of a new run under torchrun: they write no folder
    summary: dict


@dataclass
class Context:
    """What every evaluation step of a run reads."""

    spec: ExperimentSpec
    splits: Splits
    normalizer: Normalizer
    device: torch.device
    task: Task
    log: Callable[[str], None]


@dataclass
class Outputs:
    """What the evaluation steps add to the summary and the report."""

    metrics: dict[str, float]
    figs: dict[str, bytes]
    per_class: dict | None = None
    hover: dict | None = None
    # t-SNE coordinates, so a study can redraw several runs' maps in one figure
    maps: dict | None = None


def run_experiment(
    spec: ExperimentSpec,
    runs_dir: Path = Path("runs"),
    resume: Path | None = None,
    log=print,
    run_dir: Path | None = None,
    hooks: list | tuple = (),
) -> RunResult:
    """Train, evaluate and report ``spec``; with ``resume``, continue that run folder.

    ``run_dir`` names the new run folder exactly (studies do, so they can find it again);
    otherwise it is ``runs_dir/<name>-<timestamp>``. ``hooks`` are extra Trainer hooks called
    after every epoch with ``(trainer, record)`` (``replab tune`` reports to Optuna there). An
    exception with a ``run_state`` attribute (a pruned trial) leaves the run folder in that
    state, with the exception's text, instead of ``failed``.
    """
    check_trainer_spec(spec.trainer)
    # under torchrun: ranks > 0 train silently; rank 0 writes, evaluates, reports
    if not distributed.is_main():
        return RunResult(
            resume,
            _run(spec, resume, resumed=resume is not None, log=lambda _: None, hooks=list(hooks)),
        )
    if resume:
        run_dir = Path(resume)
        rundir.open_existing(run_dir)  # a clear error before any lock file is made there
    else:
        base = Path(run_dir) if run_dir else Path(runs_dir)
        # the folders this run makes, removed again if it fails before training
        made = [p for p in (base, *base.parents) if not p.exists()]
        run_dir = (
            rundir.create_run_dir(run_dir, spec) if run_dir else rundir.new_run_dir(runs_dir, spec)
        )
        made.insert(0, run_dir)
    try:
        with folder_lock(run_dir, "run"):
            return _locked(spec, run_dir, resume is not None, log, list(hooks))
    except ReplabError as err:
        # missing data, a model that cannot be built, a device not there: nothing was trained,
        # so leave no run folder behind (nor a runs folder made for it)
        if not resume and getattr(err, "before_training", False):
            shutil.rmtree(run_dir, ignore_errors=True)
            for folder in made[1:]:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        raise


def _locked(spec: ExperimentSpec, run_dir: Path, resumed: bool, log, hooks: list) -> RunResult:
    """The run, holding its folder's lock: no other process writes ``run_dir`` meanwhile."""
    if resumed:
        rundir.check_not_running(run_dir)
        if rundir.read_status(run_dir) == "finished" and (run_dir / rundir.SUMMARY).is_file():
            raise ReplabError(
                f"{run_dir} has already finished; resuming it would change nothing",
                f"see its results with `replab report {run_dir}`, "
                f"or train it again as a new run: `replab run {run_dir / rundir.CONFIG}`",
            )
        if rundir.read_status(run_dir) is not None:
            log(f"resuming {run_dir}: it {rundir.describe_state(run_dir)}")
        # half-written files of a killed writer: holding the lock, we know it is gone
        remove_stale_temp_files(run_dir)
    status_before = _read_bytes(run_dir / rundir.STATUS)
    rundir.set_status(run_dir, "running")
    started: list[bool] = []
    try:
        summary = _tracked(spec, run_dir, resumed, log, hooks, started)
    except ReplabError as err:
        if not started:
            # refused before training (a bad checkpoint, missing data): the folder stays exactly
            # as it was, status.json included, so the error is all that happened
            if status_before is None:
                (run_dir / rundir.STATUS).unlink(missing_ok=True)
            else:
                atomic_write_bytes(run_dir / rundir.STATUS, status_before)
            err.before_training = True  # type: ignore[attr-defined]
            raise
        _mark_failed(run_dir, err.message)
        if isinstance(err, DiskFullError):
            raise DiskFullError(
                err.problem, f"free some space, then continue with `replab run --resume {run_dir}`"
            ) from None
        raise
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt) and not hasattr(err, "replab_resume"):
            # Ctrl-C: the command line names this folder and the exact command that continues it
            err.replab_resume = (  # type: ignore[attr-defined]
                str(run_dir),
                f"replab run --resume {run_dir}",
            )
        state = getattr(err, "run_state", None)
        if isinstance(state, str):  # a pruned trial of `replab tune`
            rundir.set_status(run_dir, state, reason=str(err))
        else:
            _mark_failed(run_dir, f"{type(err).__name__}: {err}")
        raise
    rundir.set_status(run_dir, "finished")
    return RunResult(run_dir, summary)


def _tracked(
    spec: ExperimentSpec, run_dir: Path, resumed: bool, log, hooks: list, started: list[bool]
) -> dict:
    """``_run`` with its TensorBoard and MLflow trackers, ended however the run ends."""
    tracker = RunTracker(spec, run_dir, log)
    try:
        summary = _run(spec, run_dir, resumed, log, hooks, started, tracker)
    except BaseException as err:
        tracker.close(err)
        raise
    tracker.close(None)
    return summary


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _mark_failed(run_dir: Path, error: str) -> None:
    """Best effort: on a full disk even status.json may not be writable, and then it keeps
    saying "running" with a pid that is gone, which readers report as interrupted."""
    with contextlib.suppress(ReplabError, OSError):
        rundir.set_status(run_dir, "failed", error=error)


def run_or_reuse(spec: ExperimentSpec, run_dir: Path, log=print) -> dict:
    """The summary of the run in ``run_dir``: reused if finished, resumed if interrupted, else
    trained.

    This is what makes a study or sweep resumable: run it again and only missing work is done.
    """
    state = rundir.read_status(run_dir)
    if state is None or not (run_dir / rundir.CONFIG).is_file():
        return run_experiment(spec, run_dir=run_dir, log=log).summary
    if not same_training(rundir.open_existing(run_dir), spec):
        raise ReplabError(
            f"{run_dir} holds a run with another configuration",
            "pick a new study folder, or delete that run folder to retrain it",
        )
    if state == "finished" and (run_dir / rundir.SUMMARY).is_file():
        log(f"reusing the finished run {run_dir}")
        return rundir.read_summary(run_dir)
    return run_experiment(spec, resume=run_dir, log=log).summary


def load_data(spec: ExperimentSpec) -> tuple[Splits, Normalizer]:
    """The run's splits and pixel normalizer, exactly as training sees them.

    Public so a study can fit a reference model (study D's LinearSVC) on the very same data.
    """
    d = spec.data
    splits = load_splits(
        d.dataset,
        root=d.root,
        download=d.download,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        limit_train=d.limit_train,
        limit_eval=d.limit_eval,
        seed=spec.seed,
        classes=d.classes,
        refit=d.refit,
        train_split=d.train_split,
        image_size=d.image_size,
        channels=d.channels,
        skip_corrupt=d.skip_corrupt,
    )
    mode = d.normalize if isinstance(d.normalize, str) else d.normalize.model_dump()
    return splits, Normalizer.fit(splits.fit.images, mode)


# Tasks that learn from the images alone; every other task trains on labels.
LABEL_FREE_TASKS = ("autoencode", "vae", "contrastive", "momentum_contrastive", "rotation")


def check_labels(spec: ExperimentSpec, splits: Splits) -> None:
    """Refuse, before any training, what an unlabelled dataset cannot give."""
    fit = splits.fit
    if not fit.labelled and spec.task.name not in LABEL_FREE_TASKS:
        raise ConfigError(
            f"task {spec.task.name} trains on labels, but the images it would train on have "
            f"none ({fit.source})",
            f"use a task that needs none ({', '.join(LABEL_FREE_TASKS)}), or labelled data "
            "(class subfolders for image_folder, y for npz, no data.train_split=unlabeled)",
        )
    if splits.train.labelled and splits.test.labelled:
        return
    source = f"data.dataset={spec.data.dataset} has no labels here ({splits.train.source})"
    wanted = [
        k for k, on in (("probe", spec.probe.enabled), ("analysis", spec.analysis.enabled)) if on
    ]
    if wanted:
        raise ConfigError(
            f"the {' and the '.join(wanted)} need labels, but {source}",
            " ".join(f"{k}.enabled=false" for k in wanted)
            + " to train only, or give a labelled split for them: class subfolders "
            "(image_folder), y (npz), or data.train_split=unlabeled on a dataset with labelled "
            "train/test (stl10)",
        )


def _run(
    spec: ExperimentSpec,
    run_dir: Path | None,
    resumed: bool,
    log,
    hooks: list,
    started: list[bool] | None = None,
    tracker: RunTracker | None = None,
) -> dict:
    """Train and evaluate; rank 0 writes ``run_dir`` (None on the other ranks of a new run).

    ``started`` gets True appended once everything is checked and training begins; ``tracker``
    (rank 0's) writes every epoch and the results to TensorBoard and MLflow. The run takes its
    share of the CPUs (replab/training/threads.py) for its whole length, recounted after every
    epoch."""
    with share_cpus() as share, contextlib.ExitStack() as cleanup:
        log(f"threads: {share.threads} ({share.source})")
        return _train_and_evaluate(
            spec,
            run_dir,
            resumed,
            log,
            [share.epoch_hook, *hooks],
            started,
            tracker,
            share,
            cleanup,
        )


def _train_and_evaluate(
    spec: ExperimentSpec,
    run_dir: Path | None,
    resumed: bool,
    log,
    hooks: list,
    started: list[bool] | None,
    tracker: RunTracker | None,
    share: CpuShare,
    cleanup: contextlib.ExitStack,
) -> dict:
    t0 = time.perf_counter()
    seed_everything(spec.seed, spec.trainer.deterministic)
    device = resolve_device(spec.data.device)
    splits, normalizer = load_data(spec)
    check_labels(spec, splits)
    log(f"data: {splits.fit.source}; val {len(splits.val):,}; test {len(splits.test):,}")
    if splits.pretrain is not None:
        log(f"probes and analysis: {splits.train.source}")
    task = initial_task(spec, splits.train.shape, len(splits.train.classes))
    batch = spec.trainer.batch_size
    eval_batch = batch if task.in_batch else spec.trainer.eval_batch_size
    train, val, test = _loaders(spec, splits, normalizer, device, batch, eval_batch)
    # the folder this process writes: rank 0's run folder, none on the other ranks
    folder = run_dir if distributed.is_main() else None
    trail = (
        ReconstructionTrail(
            folder / rundir.FIGURES / rundir.TRAIL, splits.test.images, normalizer, device
        )
        if task.reconstructs and folder is not None
        else None
    )
    ahead = _image_space_ahead(spec, splits, folder, cleanup)
    trainer = Trainer(
        task,
        spec.trainer,
        train,
        val,
        device,
        checkpoint_dir=run_dir,
        hooks=[
            _epoch_logger(log),
            *([trail] if trail else []),
            *([tracker.epoch] if tracker else []),
            *([ahead] if ahead else []),
            *hooks,
        ],
        distributed=True,
    )
    if resumed and run_dir is not None and (run_dir / rundir.LAST).exists():
        trainer.resume(run_dir / rundir.LAST)
        log(f"resumed after epoch {len(trainer.history)}")
    if started is not None:
        started.append(True)
    if folder is not None:
        _rewrite_metrics(folder, trainer.history)
    if tracker is not None:
        tracker.start(trainer)
    t_data = time.perf_counter() - t0
    fit = trainer.fit()
    t_train = time.perf_counter() - t0 - t_data
    log(
        f"trained {len(fit.history)} epochs in {fit.train_seconds:.1f} s "
        f"(best epoch {fit.best_epoch})"
    )
    if folder is None:
        return {}
    note = ahead.finish() if ahead is not None else None
    if note is not None:
        log(note)
        share.apply()  # the helper's CPU is back: the evaluation runs at the run's share

    out = Outputs(
        metrics={**_trained_metrics(fit), **_dotted(trainer.evaluate(test, "test"))},
        figs={"training curves": figures.curves(fit.history, spec.name)},
    )
    ctx = Context(spec, splits, normalizer, device, task, log)
    if task.reconstructs:
        out.metrics.update(_reconstruction(ctx, out.figs))
        if trail is not None:
            _trail_figure(trail, splits.test.images[0], out.figs)
    if spec.task.name == "classify":
        _classifier_report(ctx, test, out)
    latents = _latents(ctx) if spec.probe.enabled or spec.analysis.enabled else None
    if spec.probe.enabled and latents is not None:
        _probes(ctx, latents, out)
    t_probe = time.perf_counter() - t0 - t_data - t_train
    if spec.analysis.enabled and latents is not None:
        _analysis(ctx, latents, out)
    t_eval = time.perf_counter() - t0 - t_data - t_train

    summary = run_summary(
        ctx,
        out,
        training={
            "epochs": len(fit.history),
            "best_epoch": fit.best_epoch,
            "evaluated_epoch": fit.evaluated_epoch,
            "stopped_early": fit.stopped_early,
        },
        timings={
            "data": t_data,
            "train": t_train,
            "probe": t_probe,
            "analysis": t_eval - t_probe,
            "evaluation": t_eval,
            "total": time.perf_counter() - t0,
            **({"image_space_helper": ahead.seconds} if ahead and ahead.seconds else {}),
        },
    )
    summary["threads"] = share.record()
    write_run(folder, spec, summary, out)
    if tracker is not None:
        tracker.finish(summary, out.figs, _projector(ctx, latents))
    return summary


def _projector(ctx: Context, latents: Latents | None):
    """Test latents, their images and class names, for TensorBoard's embedding projector."""
    test = ctx.splits.test
    if latents is None or not test.labelled:
        return None
    names = [test.classes[int(y)] for y in test.labels]
    return latents.test, test.images, names


def run_summary(ctx: Context, out: Outputs, training: dict, timings: dict) -> dict:
    """summary.json of a finished run: what ran on what, its metrics, figures' sources, times."""
    spec, splits = ctx.spec, ctx.splits
    note = reference_note(spec)
    return {
        "name": spec.name,
        "description": spec.description,
        "state": "finished",
        "data": splits.source,
        "device": _device_name(ctx.device),
        "parameters": _parameter_counts(ctx.task.model),
        # what rebuilding the model needs (replab.load), whatever the data source
        "input_shape": list(splits.train.shape),
        "num_classes": len(splits.train.classes),
        "seed": spec.seed,
        **training,
        "metrics": out.metrics,
        "per_class": out.per_class,
        # a figure measured on other data is no reference: the report says so instead
        "reference": {} if note else spec.report.reference,
        "reference_source": spec.report.reference_source,
        "reference_note": note,
        "timings": timings,
        "replab_version": replab.__version__,
    }


def write_run(folder: Path, spec: ExperimentSpec, summary: dict, out: Outputs) -> None:
    """The run folder's outputs: t-SNE map data, figures, summary.json and report.html."""
    if out.maps is not None:
        atomic_write_json(folder / rundir.FIGURES / rundir.TSNE_DATA, out.maps)
    _write_outputs(folder, spec, summary, out.figs, out.hover)


def initial_task(spec: ExperimentSpec, shape: tuple[int, ...], num_classes: int):
    """The task with the exact weights its run starts from: nothing but the seed decides them."""
    torch.manual_seed(spec.seed)
    return build_task(spec, shape, num_classes)


def _dotted(metrics: dict[str, float]) -> dict[str, float]:
    return {k.replace("_", ".", 1): v for k, v in metrics.items()}


def _trained_metrics(fit) -> dict[str, float]:
    """Train and validation figures of the epoch whose weights are evaluated on test: the best
    one, or the last with ``trainer.keep: last`` (report 002 quotes its last epoch)."""
    record = fit.evaluated_record()
    return _dotted({k: v for k, v in record.items() if k.startswith(("train_", "val_"))})


def _epoch_logger(log):
    def hook(trainer: Trainer, record: dict) -> None:
        stride = max(1, trainer.spec.epochs // 20)  # about 20 lines for a long run
        if record["epoch"] % stride and record["epoch"] != 1:
            return
        shown = "  ".join(
            f"{k} {v:.4f}" for k, v in record.items() if k.startswith(("train_", "val_"))
        )
        log(
            f"epoch {record['epoch']:>3}/{trainer.spec.epochs}  {shown}  "
            f"({record['seconds']:.1f} s){'  *' if record.get('best') else ''}"
        )

    return hook


def _loaders(
    spec: ExperimentSpec,
    splits: Splits,
    normalizer: Normalizer,
    device: torch.device,
    batch_size: int,
    eval_batch_size: int,
    labelled: bool = False,
):
    """train/val/test loaders; train is the model's own training split unless ``labelled``
    (fine-tuning with a head trains on the labelled train split)."""
    make = lambda s, bs, shuffle: DeviceLoader(  # noqa: E731
        s.images,
        s.labels,
        bs,
        shuffle=shuffle,
        seed=spec.seed,
        normalizer=normalizer,
        device=device,
    )
    return (
        make(splits.train if labelled else splits.fit, batch_size, True),
        make(splits.val, eval_batch_size, False),
        make(splits.test, eval_batch_size, False),
    )


def _record_probe(prefix: str, result, out: Outputs, title: str, log) -> None:
    for split in ("val", "test", "train"):
        out.metrics[f"{prefix}.{split}_accuracy"] = getattr(result, f"{split}_accuracy")
    out.metrics[f"{prefix}.test_macro_f1"] = result.test_report.macro_f1
    out.figs[f"{title}: training curves"] = figures.curves(result.history, title)
    took = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
    log(
        f"{prefix}: val accuracy {result.val_accuracy:.4f}, "
        f"test accuracy {result.test_accuracy:.4f} ({result.epochs} epochs{took})"
    )


def _per_class(report) -> dict:
    return {
        c: {"precision": p, "recall": r, "f1": f, "support": n}
        for c, p, r, f, n in zip(
            report.classes, report.precision, report.recall, report.f1, report.support, strict=True
        )
    }


def _reconstruction(ctx: Context, figs: dict) -> dict:
    images = ctx.splits.test.images
    recon = reconstruct(
        ctx.task.model, images, ctx.normalizer, ctx.device, ctx.spec.trainer.eval_batch_size
    )
    m = reconstruction_metrics(recon, images)
    n = ctx.spec.report.n_reconstructions
    figs["reconstructions (test images: originals above, reconstructions below)"] = (
        figures.image_grid(
            [images[:n].float() / 255, recon[:n].cpu()], ["original", "reconstructed"]
        )
    )
    return {"test.mae": m.mae, "test.mse": m.mse, "test.psnr": m.psnr}


def _trail_figure(trail: ReconstructionTrail, original: torch.Tensor, figs: dict) -> None:
    epochs, images = trail.columns()
    if epochs:
        figs["one test image reconstructed after each epoch"] = figures.image_grid(
            [original[None].float() / 255, images],
            ["original", "epochs " + ", ".join(map(str, epochs))],
        )


def _classifier_report(ctx: Context, test: DeviceLoader, out: Outputs) -> None:
    """Per-class precision, recall and F1 of the trained classifier itself on the test set."""
    classes = ctx.splits.test.classes
    report = classification_report(*predictions(ctx.task.model, test), classes)
    out.per_class = _per_class(report)
    out.metrics["test.macro_f1"] = report.macro_f1
    out.figs["confusion matrix of the classifier (test)"] = figures.confusion(
        report.confusion, classes
    )


def _latents(ctx: Context) -> Latents:
    bs = ctx.spec.trainer.eval_batch_size
    z = {
        name: embed(
            ctx.task.encoder, getattr(ctx.splits, name).images, ctx.normalizer, ctx.device, bs
        )
        for name in ("train", "val", "test")
    }
    return Latents(
        z["train"],
        z["val"],
        z["test"],
        ctx.splits.train.labels,
        ctx.splits.val.labels,
        ctx.splits.test.labels,
    )


def _linear_probes(ctx: Context, latents: Latents, out: Outputs) -> None:
    """``probe.linear`` on the latents and ``probe.pixels`` on the raw pixels of the same
    rows: one affine map each, trained like the MLP probe."""
    spec, classes = ctx.spec.probe, ctx.splits.train.classes
    linear = Component(name="linear_head")
    spaces = [("linear_probe", latents, "linear probe on frozen latents")] if spec.linear else []
    if spec.pixels:
        flat = {
            n: getattr(ctx.splits, n).images.flatten(1).float() for n in ("train", "val", "test")
        }
        # pixels constant over the train split (MNIST's border) carry nothing, and z-scoring
        # them would blow up the rare test image that has ink there
        used = flat["train"].std(0) > 0
        pixels = Latents(
            **{n: x[:, used] for n, x in flat.items()},
            y_train=latents.y_train,
            y_val=latents.y_val,
            y_test=latents.y_test,
        )
        spaces.append(("image.linear_probe", pixels, "linear probe on the pixels"))
    for prefix, z, title in spaces:
        result = train_probe(
            z, linear, spec.trainer, len(classes), ctx.device, ctx.spec.seed, classes
        )
        _record_probe(prefix, result, out, title, ctx.log)


def _probes(ctx: Context, latents: Latents, out: Outputs) -> None:
    """The frozen-latent probe (with per-class scores), and the fine-tuned encoder when asked."""
    spec, classes = ctx.spec, ctx.splits.train.classes
    ctx.log(
        f"probe: {spec.probe.head.name} on {len(latents.train):,} frozen latents "
        f"(up to {spec.probe.trainer.epochs} epochs, batch {spec.probe.trainer.batch_size})"
    )
    start = time.perf_counter()
    probe = train_probe(
        latents, spec.probe.head, spec.probe.trainer, len(classes), ctx.device, spec.seed, classes
    )
    probe.seconds = time.perf_counter() - start
    _record_probe("probe", probe, out, "probe on frozen latents", ctx.log)
    _linear_probes(ctx, latents, out)
    out.per_class = out.per_class or _per_class(probe.test_report)
    out.figs["confusion matrix of the probe (test)"] = figures.confusion(
        probe.test_report.confusion, classes
    )
    if spec.probe.finetune:
        ft = spec.probe.finetune_trainer
        loaders = dict(
            zip(
                ("train", "val", "test"),
                _loaders(
                    spec,
                    ctx.splits,
                    ctx.normalizer,
                    ctx.device,
                    ft.batch_size,
                    ft.eval_batch_size,
                    labelled=True,
                ),
                strict=True,
            )
        )
        tuned = finetune_probe(
            ctx.task.encoder,
            spec.probe.head,
            ft,
            loaders,
            len(classes),
            ctx.device,
            spec.seed,
            classes,
        )
        _record_probe("finetune", tuned, out, "encoder fine-tuned with the head", ctx.log)


def _image_space_ahead(
    spec: ExperimentSpec, splits: Splits, folder: Path | None, cleanup: contextlib.ExitStack
) -> ImageSpaceAhead | None:
    """The epoch hook that has the image space computed during training, when the analysis
    will need it (only the process that writes the run folder analyses)."""
    analysis = spec.analysis
    if folder is None or not (analysis.enabled and analysis.image_space_ahead):
        return None
    if not analysis.image_space or splits.test.images[0].numel() == 2:
        return None  # no image space, or one drawn as it is (2 pixels), never cached
    ahead = ImageSpaceAhead(
        splits.test.images,
        splits.test.labels,
        analysis,
        spec.seed,
        cache_dir() / ANALYSIS_CACHE,
        spec.trainer.epochs,
    )
    cleanup.callback(ahead.stop)  # however the run ends, the helper ends with it
    return ahead


def _analysis(ctx: Context, latents: Latents, out: Outputs) -> None:
    test = ctx.splits.test
    z_initial = _initial_latents(ctx) if latents.test.shape[1] == 2 else None
    analysis = analyse(
        test,
        latents.test,
        ctx.spec.analysis,
        getattr(ctx.task.model, "decoder", None),
        ctx.normalizer,
        ctx.spec.seed,
        z_initial,
        prior=ctx.task.has_prior,
        cache=cache_dir() / ANALYSIS_CACHE,
    )
    for space in analysis.spaces:
        key = SPACES[space.name]
        out.metrics[f"{key}.knn_accuracy"] = space.scores.knn_accuracy
        out.metrics[f"{key}.silhouette"] = space.scores.silhouette
        if space.scores.trustworthiness is not None:
            out.metrics[f"{key}.tsne_trustworthiness"] = space.scores.trustworthiness
        if space.scores.effective_rank is not None:
            out.metrics[f"{key}.effective_rank"] = space.scores.effective_rank
    out.metrics["latent.pca_components_95"] = analysis.pca.components_for(0.95)
    out.metrics["latent.pca_components_99"] = analysis.pca.components_for(0.99)
    out.figs.update(analysis_figures(analysis, test.classes))
    out.maps = tsne_points(analysis, test.classes)
    out.hover = hover_map(analysis, test.images, test.classes)
    ctx.log("analysis: " + ", ".join(f"{k} {v:.1f} s" for k, v in analysis.seconds.items()))


def _initial_latents(ctx: Context) -> torch.Tensor:
    """The untrained encoder's test latents: a 2-D latent is plotted before and after training."""
    with torch.random.fork_rng():  # rebuilding re-seeds; what runs next keeps its random stream
        initial = initial_task(ctx.spec, ctx.splits.train.shape, len(ctx.splits.train.classes))
    return embed(
        initial.encoder,
        ctx.splits.test.images,
        ctx.normalizer,
        ctx.device,
        ctx.spec.trainer.eval_batch_size,
    )


def _rewrite_metrics(run_dir: Path, history: list[dict]) -> None:
    """metrics.jsonl mirrors the checkpoint's history (a kill may have cut it short or long)."""
    atomic_write_text(run_dir / rundir.METRICS, "".join(json.dumps(r) + "\n" for r in history))


def _write_outputs(
    run_dir: Path, spec: ExperimentSpec, summary: dict, figs: dict[str, bytes], hover: dict | None
) -> None:
    if hover is not None:
        atomic_write_bytes(run_dir / rundir.FIGURES / rundir.HOVER_SPRITE, hover["sprite"])
        atomic_write_json(
            run_dir / rundir.FIGURES / rundir.HOVER_DATA,
            {k: v for k, v in hover.items() if k != "sprite"},
        )
    summary["figures"] = []
    for i, (name, png) in enumerate(figs.items()):
        file = f"{rundir.FIGURES}/{i:02d}-{rundir.safe_name(name)[:60]}.png"
        atomic_write_bytes(run_dir / file, png)
        summary["figures"].append({"name": name, "file": file})
    atomic_write_json(run_dir / rundir.SUMMARY, summary)
    write_run_report(run_dir / rundir.REPORT, summary, figs, spec_to_yaml(spec), hover)


def _parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Each Parameter once (a tied decoder reuses the encoder's weights, so counts them once)."""
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
