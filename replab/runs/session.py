"""One run's work inside its folder: data, training, evaluation, outputs.

``lifecycle`` owns the folder (lock, status, trackers, resume) and hands this module one
``RunContext``; ``execute`` trains and evaluates with it. On the ranks > 0 of a torchrun job it
only trains: rank 0 evaluates and writes.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from replab.data import Normalizer, Splits, cache_dir
from replab.data.stream import Batches, StreamLoader, StreamSet
from replab.errors import ConfigError
from replab.evaluation.image_ahead import ImageSpaceAhead
from replab.evaluation.monitor import COLLAPSED, Monitor
from replab.evaluation.trail import ReconstructionTrail
from replab.io import Log, atomic_write_text
from replab.reporting import figures
from replab.runs import rundir
from replab.runs.evaluate import (
    ANALYSIS_CACHE,
    EvalContext,
    Outputs,
    evaluate_trained,
    projector,
    run_summary,
    write_run,
)
from replab.runs.prepare import check_labels, held, initial_task, load_data, loaders
from replab.runs.tracking import RunTracker
from replab.spec import MONITOR_METRICS, ExperimentSpec
from replab.tasks import Task
from replab.training import Trainer, distributed, resolve_device, seed_everything
from replab.training.threads import CpuShare, share_cpus
from replab.training.trainer import FitResult, Hook


@dataclass
class RunContext:
    """What a run is given, and what it tells the folder's keeper back (``started``)."""

    spec: ExperimentSpec
    run_dir: Path | None  # None on the ranks > 0 of a new run: they write no folder
    resumed: bool
    log: Log
    hooks: list[Hook] = field(default_factory=list)  # extra epoch hooks (tune reports there)
    tracker: RunTracker | None = None  # rank 0's TensorBoard and MLflow writer
    # True once everything is checked and training begins: a failure before leaves the folder
    # as it was, one after marks the run failed
    started: bool = False

    @property
    def folder(self) -> Path | None:
        """The folder this process writes: rank 0's run folder, none on the other ranks."""
        return self.run_dir if distributed.is_main() else None


@dataclass
class Prepared:
    """The run's data, task and loaders, built in the order that fixes its random stream."""

    splits: Splits
    normalizer: Normalizer
    device: torch.device
    task: Task
    train: Batches
    val: Batches
    test: Batches


def execute(ctx: RunContext) -> dict:
    """Train and evaluate; the summary (empty on ranks > 0). The run takes its share of the
    CPUs (replab/training/threads.py) for its whole length, recounted after every epoch."""
    with share_cpus() as share, contextlib.ExitStack() as cleanup:
        ctx.log(f"threads: {share.threads} ({share.source})")
        t0 = time.perf_counter()
        p = prepare(ctx)
        if isinstance(p.train, StreamLoader):  # its decoding workers need CPUs of their own
            share.readers = p.train.workers
            ctx.log(f"threads: {share.apply()} ({share.source})")
        trail = _trail(ctx, p)
        ahead = _image_space_ahead(ctx, p.splits, cleanup)
        monitor = _monitor(ctx, p)
        trainer = _trainer(ctx, p, trail, ahead, share)
        trainer.measures += [monitor] if monitor is not None else []
        _start(ctx, trainer)
        t_data = time.perf_counter() - t0
        fit = trainer.fit()
        t_train = time.perf_counter() - t0 - t_data
        ctx.log(
            f"trained {len(fit.history)} epochs in {fit.train_seconds:.1f} s "
            f"(best epoch {fit.best_epoch})"
        )
        share.readers = 0  # training's readers are gone: the evaluation takes the share
        share.apply()
        if ctx.folder is None:
            return {}
        note = ahead.finish() if ahead is not None else None
        if note is not None:
            ctx.log(note)
            share.apply()  # the helper's CPU is back: the evaluation runs at the run's share
        timings = {"data": t_data, "train": t_train}
        if ahead is not None and ahead.seconds:
            timings["image_space_helper"] = ahead.seconds
        if monitor is not None:
            timings["monitor"] = monitor.seconds  # inside "train": what the monitors cost
        return _evaluate(ctx, p, trainer, fit, trail, t0, timings, share)


def prepare(ctx: RunContext) -> Prepared:
    """Seed, device, data (its labels checked), the task's initial weights and the loaders."""
    spec = ctx.spec
    seed_everything(spec.seed, spec.trainer.deterministic)
    device = resolve_device(spec.data.device)
    splits, normalizer = load_data(spec)
    check_labels(spec, splits)
    if splits.residency:  # packed shards: held or streamed, and the figures that decided
        ctx.log(f"data: {splits.residency}")
    ctx.log(f"data: {splits.fit.source}; val {len(splits.val):,}; test {len(splits.test):,}")
    if splits.pretrain is not None:
        ctx.log(f"probes and analysis: {splits.train.source}")
    task = initial_task(spec, splits.train.shape, len(splits.train.classes))
    batch = spec.trainer.batch_size
    eval_batch = batch if task.in_batch else spec.trainer.eval_batch_size
    train, val, test = loaders(spec, splits, normalizer, device, batch, eval_batch)
    return Prepared(splits, normalizer, device, task, train, val, test)


def _monitor(ctx: RunContext, p: Prepared) -> Monitor | None:
    """The latent-space monitor (val_knn, val_rank), when asked and the data has labelled
    train and val rows; only the process that writes measures (the others take its record)."""
    spec, splits = ctx.spec, p.splits
    labelled = splits.train.labelled and splits.val.labelled and len(splits.val) > 0
    es = spec.trainer.early_stopping
    if es is not None and es.monitor in MONITOR_METRICS and not labelled:
        raise ConfigError(
            f"trainer.early_stopping.monitor {es.monitor} needs labelled train and val images; "
            f"these have none ({splits.train.source})",
            "monitor val_loss instead, or use labelled data",
        )
    if not spec.monitor.enabled or ctx.folder is None or not labelled:
        return None
    return Monitor(
        spec.monitor,
        held(splits.train),
        held(splits.val),
        p.normalizer,
        p.device,
        spec.seed,
        ctx.log,
        spec.trainer.eval_batch_size,
    )


def _trail(ctx: RunContext, p: Prepared) -> ReconstructionTrail | None:
    """One test image reconstructed after every epoch (a task that reconstructs, rank 0)."""
    if not p.task.reconstructs or ctx.folder is None:
        return None
    path = ctx.folder / rundir.FIGURES / rundir.TRAIL
    # the trail shows one image; a streamed test split gives its first few, not all of it
    return ReconstructionTrail(path, held(p.splits.test, 16).images, p.normalizer, p.device)


def _trainer(
    ctx: RunContext,
    p: Prepared,
    trail: ReconstructionTrail | None,
    ahead: ImageSpaceAhead | None,
    share: CpuShare,
) -> Trainer:
    """The trainer with its epoch hooks in order: the log line, the trail, the trackers, the
    image-space helper, the CPU share's recount, then the caller's own."""
    hooks: list[Hook] = [_epoch_logger(ctx.log)]
    hooks += [trail] if trail is not None else []
    hooks += [ctx.tracker.epoch] if ctx.tracker is not None else []
    hooks += [ahead] if ahead is not None else []
    hooks += [share.epoch_hook, *ctx.hooks]
    return Trainer(
        p.task,
        ctx.spec.trainer,
        p.train,
        p.val,
        p.device,
        checkpoint_dir=ctx.run_dir,
        hooks=hooks,
        distributed=True,
    )


def _start(ctx: RunContext, trainer: Trainer) -> None:
    """Continue a resumed run's checkpoint, then tell the folder's keeper training begins."""
    run_dir = ctx.run_dir
    if ctx.resumed and run_dir is not None and (run_dir / rundir.LAST).exists():
        trainer.resume(run_dir / rundir.LAST)
        ctx.log(f"resumed after epoch {len(trainer.history)}")
    ctx.started = True
    if ctx.folder is not None:
        # metrics.jsonl mirrors the checkpoint's history (a kill may have cut it short or long)
        lines = "".join(json.dumps(r) + "\n" for r in trainer.history)
        atomic_write_text(ctx.folder / rundir.METRICS, lines)
    if ctx.tracker is not None:
        ctx.tracker.start(trainer)


def _evaluate(
    ctx: RunContext,
    p: Prepared,
    trainer: Trainer,
    fit: FitResult,
    trail: ReconstructionTrail | None,
    t0: float,
    timings: dict,
    share: CpuShare,
) -> dict:
    """The trained encoder evaluated, its folder's outputs written and the trackers told; the
    summary."""
    out = Outputs(
        metrics={**_trained_metrics(fit), **_dotted(trainer.evaluate(p.test, "test"))},
        figs={"training curves": figures.curves(fit.history, ctx.spec.name)},
    )
    if any("val_knn" in r for r in fit.history):
        out.figs["the latent space while training (monitors)"] = figures.monitor_curves(
            fit.history, COLLAPSED
        )
    ectx = EvalContext(ctx.spec, p.splits, p.normalizer, p.device, p.task, ctx.log)
    done = evaluate_trained(ectx, p.test, out, trail)
    end = time.perf_counter()
    t_eval = end - t0 - timings["data"] - timings["train"]
    t_probe = done.probes_done - t0 - timings["data"] - timings["train"]
    helper = {k: v for k, v in timings.items() if k in ("image_space_helper", "monitor")}
    summary = run_summary(
        ectx,
        out,
        training={
            "epochs": len(fit.history),
            "best_epoch": fit.best_epoch,
            "evaluated_epoch": fit.evaluated_epoch,
            "stopped_early": fit.stopped_early,
        },
        timings={
            "data": timings["data"],
            "train": timings["train"],
            "probe": t_probe,
            "analysis": t_eval - t_probe,
            "evaluation": t_eval,
            "total": end - t0,
            **helper,
        },
    )
    summary["threads"] = share.record()
    assert ctx.folder is not None  # only rank 0 evaluates
    write_run(ctx.folder, ctx.spec, summary, out)
    if ctx.tracker is not None:
        ctx.tracker.finish(summary, out.figs, projector(ectx, done.latents))
    return summary


def _image_space_ahead(
    ctx: RunContext, splits: Splits, cleanup: contextlib.ExitStack
) -> ImageSpaceAhead | None:
    """The epoch hook that has the image space computed during training, when the analysis
    will need it (only the process that writes the run folder analyses)."""
    analysis, spec = ctx.spec.analysis, ctx.spec
    if ctx.folder is None or not (analysis.enabled and analysis.image_space_ahead):
        return None
    test = splits.test
    if not analysis.image_space or isinstance(test, StreamSet) or test.images[0].numel() == 2:
        return None  # no image space, one drawn as it is (2 pixels), or a streamed test split
    ahead = ImageSpaceAhead(
        test.images,
        test.labels,
        analysis,
        spec.seed,
        cache_dir() / ANALYSIS_CACHE,
        spec.trainer.epochs,
    )
    cleanup.callback(ahead.stop)  # however the run ends, the helper ends with it
    return ahead


def _dotted(metrics: dict[str, float]) -> dict[str, float]:
    return {k.replace("_", ".", 1): v for k, v in metrics.items()}


def _trained_metrics(fit: FitResult) -> dict[str, float]:
    """Train and validation figures of the epoch whose weights are evaluated on test: the best
    one, or the last with ``trainer.keep: last`` (report 002 quotes its last epoch)."""
    record = fit.evaluated_record()
    return _dotted({k: v for k, v in record.items() if k.startswith(("train_", "val_"))})


def _epoch_logger(log: Log) -> Hook:
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
