"""One trainer for every task: epochs, validation, early stopping, checkpoints, resume.

Hooks let studies and methods add work without touching the loop: ``hooks`` run after every
epoch with ``(trainer, record)`` (tune reports to Optuna there), ``step_hooks`` after every
optimizer step with ``(trainer, step)``, and ``measures`` add figures to an epoch's record
before early stopping reads it (the latent-space monitors). A method's own per-step work (a
momentum copy's EMA update) is the task's: ``task.step_hooks()`` run first, with
``(step, total steps)``.

The trainer never changes the task it is given: the module its steps run through (the
task's model, compiled and/or wrapped for DDP) and the cross-rank ``gather`` are passed to
``task.step`` on every call.

With ``distributed=True`` inside a process group (``replab run`` under ``torchrun``) the
training steps run through DistributedDataParallel on each rank's slice of every global
batch; epoch metrics are reduced over ranks and only rank 0 writes checkpoints (see
docs/distributed.md).
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from tqdm.std import tqdm

from replab.data.stream import Batches
from replab.errors import CheckpointError, ConfigError, DivergenceError
from replab.io import (
    append_jsonl,
    load_checkpoint,
    load_state_into,
    progress_bar,
    save_checkpoint,
)
from replab.spec import TrainerSpec
from replab.tasks import Task
from replab.training import distributed as dist
from replab.training.device import autocast
from replab.training.early_stopping import EarlyStopping
from replab.training.early_stopping import check_state as check_stopper_state
from replab.training.optimizers import build_optimizer, check_optimizer
from replab.training.schedules import SCHEDULES

Hook = Callable[["Trainer", dict], None]
StepHook = Callable[["Trainer", int], None]  # (trainer, optimizer steps taken so far in the run)
# (trainer, epoch) -> figures added to the epoch's record before early stopping reads it
Measure = Callable[["Trainer", int], dict[str, float]]
RESUME_KEYS = ("model", "optimizer", "history", "stopper", "best_state", "loader", "torch_rng")


PROGRESS_ENV = "REPLAB_PROGRESS"  # "off": no bars (the --jobs workers: their parent reports)


def interactive() -> bool:
    """Whether a person watches: a terminal, or a Jupyter kernel (where each cell gets one
    progress line). Logs, CI and piped output get no bars, only the epoch lines."""
    if os.environ.get(PROGRESS_ENV, "").lower() == "off":
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress(iterable=None, **options) -> tqdm:
    """A tqdm bar shown only where a person watches (see ``interactive``); in Jupyter every bar
    of a cell updates that cell's one progress line (``io.progress_bar``)."""
    disable = not interactive() or not dist.is_main()
    return progress_bar(iterable, leave=False, disable=disable, **options)


def check_trainer_spec(spec: TrainerSpec) -> None:
    """Names the registries must know (optimizer, its grouping, the schedule): checked before a
    run folder is created, so a typo costs nothing."""
    check_optimizer(spec.optimizer)
    SCHEDULES.get(spec.lr_schedule, where="trainer.lr_schedule")


@torch.inference_mode()
def evaluate(
    task: Task,
    model: torch.nn.Module,
    loader: Batches,
    device: torch.device,
    amp: str,
    prefix: str,
) -> dict[str, float]:
    """``prefix_<metric>``: each step metric of ``task`` through ``model``, averaged over every
    example of ``loader`` (batches weighted by size), with ``model`` in eval mode."""
    task.model.eval()
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for x, y in loader:
        with autocast(device, amp):
            metrics = task.step(x, y, model=model)
        seen += len(y)
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0) + value.float() * len(y)
    return {f"{prefix}_{k}": v.item() / seen for k, v in sums.items()}


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int
    stopped_early: bool
    train_seconds: float
    # whose weights the model holds after fit: best_epoch if restored, else the last
    evaluated_epoch: int = -1

    def evaluated_record(self) -> dict:
        return next(
            (r for r in self.history if r["epoch"] == self.evaluated_epoch), self.history[-1]
        )


@dataclass
class Trainer:
    task: Task
    spec: TrainerSpec
    train: Batches
    val: Batches
    device: torch.device
    checkpoint_dir: Path | None = None  # None: keep the best weights in memory only
    hooks: list[Hook] = field(default_factory=list)
    desc: str = "train"
    distributed: bool = False  # DDP over the process group, if one is active (else ignored)
    step_hooks: list[StepHook] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)  # run by rank 0 only

    def __post_init__(self) -> None:
        self.model = self.task.model.to(self.device)
        self.schedule = SCHEDULES.get(self.spec.lr_schedule, where="trainer.lr_schedule")
        self.optimizer = build_optimizer(self.model, self.spec.optimizer, self.device)
        es = self.spec.early_stopping
        self.stopper = (
            EarlyStopping.from_spec(es) if es else EarlyStopping("val_loss", "min", patience=10**9)
        )
        self.history: list[dict] = []
        self.best_state: dict | None = None
        # What the steps run through; the task's own model stays the plain module.
        # torch.compile gives an OptimizedModule for a module; its stub says a plain callable
        self.eval_model: torch.nn.Module = (
            cast(torch.nn.Module, torch.compile(self.model)) if self.spec.compile else self.model
        )
        self.train_model: torch.nn.Module = self.eval_model
        self.gather: Callable | None = None
        self._ddp: torch.nn.Module | None = None
        self._rng_states: list | None = None
        if self.distributed and dist.is_active():
            self._setup_distributed()

    def _setup_distributed(self) -> None:
        """Rank r trains on its slice of each global batch through DDP and may gather other
        ranks' rows (NT-Xent negatives); only rank 0 writes."""
        self.train.shard(dist.rank(), dist.world_size())
        if self.spec.sync_batchnorm:
            self._sync_batchnorm()
        ddp = dist.wrap(self.model, self.device)
        model = cast(torch.nn.Module, torch.compile(ddp)) if self.spec.compile else ddp
        self._ddp, self.train_model, self.gather = model, model, dist.gather_rows
        if not dist.is_main():
            self.checkpoint_dir = None
            # Own random stream per rank (dropout, augmentations), from the run's seed.
            torch.manual_seed(torch.initial_seed() + 1_000_003 * dist.rank())

    def _sync_batchnorm(self) -> None:
        """Batch statistics over the global batch (BYOL, SimCLR at scale). Converted in place,
        so evaluation, the task and checkpoints see the same modules (same parameters, so the
        optimizer built before still holds them)."""
        if self.device.type == "cpu":
            # torch's SyncBatchNorm raises on CPU tensors in training (torch 2.14)
            raise ConfigError(
                "trainer.sync_batchnorm needs GPUs: torch has no SyncBatchNorm for CPU (gloo) "
                "processes",
                "set trainer.sync_batchnorm=false to train CPU workers with per-rank batch "
                "norm, or run on CUDA devices",
            )
        self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.task.model = self.model

    # --- the loop -------------------------------------------------------------------------
    def fit(self) -> FitResult:
        start = time.perf_counter()
        for epoch in range(len(self.history) + 1, self.spec.epochs + 1):
            if self.stopper.should_stop:  # resumed after early stopping had already ended training
                break
            record = {"epoch": epoch, **self._train_epoch(epoch), **self.evaluate(self.val, "val")}
            if dist.is_main():  # the other ranks take rank 0's record below
                for measure in self.measures:
                    record.update(measure(self, epoch))
            record["seconds"] = round(time.perf_counter() - start, 3)
            if self._ddp is not None:  # every rank takes rank 0's decisions (early stopping, best)
                record = dist.broadcast_object(record)
                self._rng_states = dist.all_gather_objects(torch.get_rng_state())
            self._check_monitor(record)
            if self.stopper.update(record[self.stopper.monitor], epoch):
                self.best_state = copy.deepcopy(self.model.state_dict())
                record["best"] = True
            self.history.append(record)
            self._save(record)
            for hook in self.hooks:
                hook(self, record)
            if self.stopper.should_stop:
                break
        stopped = self.stopper.should_stop
        es = self.spec.early_stopping
        restored = (
            self.best_state
            if self.spec.keep == "best" and (es is None or es.restore_best)
            else None
        )
        if restored is not None:
            self.model.load_state_dict(restored)
        evaluated = self.stopper.best_epoch if restored is not None else self.history[-1]["epoch"]
        return FitResult(
            self.history, self.stopper.best_epoch, stopped, time.perf_counter() - start, evaluated
        )

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.task.train_mode()
        sums: dict[str, torch.Tensor] = {}
        losses = []
        seen: float = 0  # an int, until DDP sums it over ranks as a float
        bar = progress_bar(
            self.train,
            desc=f"{self.desc} epoch {epoch}/{self.spec.epochs}",
            leave=False,
            disable=not self.spec.progress or not interactive() or not dist.is_main(),
            unit="batch",
        )
        for step, (x, y) in enumerate(bar):
            done = (epoch - 1) * len(self.train) + step  # optimizer steps before this one
            self._schedule(done)
            with autocast(self.device, self.spec.amp):
                metrics = self.task.step(x, y, model=self.train_model, gather=self.gather)
            self.optimizer.zero_grad(set_to_none=True)
            metrics["loss"].backward()
            if self.spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
            self.optimizer.step()
            for task_hook in self.task.step_hooks():
                task_hook(done + 1, self.spec.epochs * len(self.train))
            for step_hook in self.step_hooks:
                step_hook(self, done + 1)
            n = len(y)
            seen += n
            losses.append(metrics["loss"].detach())
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0) + value.detach().float() * n
        stacked = torch.stack(losses)
        if self._ddp is not None:  # sample-weighted over ranks: every rank logs the global figures
            stacked = dist.all_reduce_mean(stacked.float())
            totals = dist.all_reduce_sum(
                torch.stack([*sums.values(), torch.tensor(float(seen), device=stacked.device)])
            )
            sums, seen = dict(zip(sums, totals[:-1], strict=True)), totals[-1].item()
        if not torch.isfinite(stacked).all():
            step = int((~torch.isfinite(stacked)).nonzero()[0])
            raise DivergenceError(
                f"the training loss became {stacked[step].item()} at epoch {epoch}, "
                f"step {step + 1}; the last good checkpoint is kept",
                "lower the learning rate (trainer.optimizer.lr), "
                "set trainer.grad_clip, or check the data normalisation",
            )
        return {f"train_{k}": v.item() / seen for k, v in sums.items()}

    def evaluate(self, loader: Batches, prefix: str) -> dict[str, float]:
        return evaluate(self.task, self.eval_model, loader, self.device, self.spec.amp, prefix)

    def _schedule(self, done: int) -> None:
        """Set the learning rate of the step after ``done`` steps. A pure function of the step
        (see schedules), so a resumed run follows the same curve with nothing extra saved."""
        warmup = round(self.spec.warmup_epochs * len(self.train))
        if self.spec.lr_schedule == "constant" and warmup == 0:
            return  # the optimizer's rates as built, untouched
        factor = self.schedule(done, self.spec.epochs * len(self.train), warmup)
        for group in self.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor

    def _check_monitor(self, record: dict) -> None:
        if self.stopper.monitor not in record:
            raise ConfigError(
                f"early stopping monitors {self.stopper.monitor!r}, "
                "which this task does not report",
                "monitor one of: "
                f"{', '.join(k for k in record if k.startswith(('val_', 'train_')))}",
            )
        if not math.isfinite(record[self.stopper.monitor]):
            raise DivergenceError(
                f"{self.stopper.monitor} became {record[self.stopper.monitor]} "
                f"at epoch {record['epoch']}; the last good checkpoint is kept",
                "lower the learning rate or set trainer.grad_clip",
            )

    # --- checkpoints --------------------------------------------------------------------
    def _save(self, record: dict) -> None:
        if self.checkpoint_dir is None:
            return
        if record.get("best"):
            save_checkpoint(
                self.checkpoint_dir / "best.pt",
                {"model": self.model.state_dict(), "epoch": record["epoch"]},
            )
        save_checkpoint(self.checkpoint_dir / "last.pt", self.state_dict())
        append_jsonl(self.checkpoint_dir / "metrics.jsonl", record)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "stopper": self.stopper.state_dict(),
            "best_state": self.best_state,
            "loader": self.train.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "task": self.task.state_dict(),
            **({"torch_rng_ranks": self._rng_states} if self._rng_states else {}),
        }

    def resume(self, path: Path) -> None:
        """Continue from ``last.pt``: same weights, optimizer moments, RNG streams and history."""
        state = load_checkpoint(path, map_location=self.device)
        missing = [k for k in RESUME_KEYS if k not in state]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(path)!r} cannot resume training: it lacks {', '.join(missing)}",
                "resume from the last.pt replab writes each epoch "
                "(best.pt holds weights only), or start a new run",
            )
        if not isinstance(state["model"], dict):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds no model weights",
                "resume from a last.pt written by replab",
            )
        # everything is checked before anything is applied: a refused checkpoint leaves the
        # trainer as it was
        _check_weights(self.model.state_dict(), state["model"], path, "model")
        if state["best_state"] is not None:
            _check_weights(self.model.state_dict(), state["best_state"], path, "best_state")
        # older checkpoints have no task state; a stateless task needs none
        _check_weights(self.task.state_dict(), state.get("task", {}), path, "task")
        try:
            _check_training_state(state, self.optimizer)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint {str(path)!r} has a damaged training state ({str(err)[:200]})",
                "restore last.pt from a backup, or start a new run",
            ) from None
        load_state_into(self.model, state["model"], path)
        try:
            self.task.load_state_dict(state.get("task", {}))
            self.optimizer.load_state_dict(state["optimizer"])
            self.history = list(state["history"])
            self.stopper.load_state_dict(state["stopper"])
            self.best_state = state["best_state"]
            self.train.load_state_dict(state["loader"])
            torch.set_rng_state(state["torch_rng"].cpu())
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise CheckpointError(
                f"checkpoint {str(path)!r} has a damaged training state "
                f"({type(err).__name__}: {str(err)[:200]})",
                "restore last.pt from a backup, or start a new run",
            ) from None
        ranks = state.get("torch_rng_ranks")
        if self._ddp is not None and ranks and len(ranks) == dist.world_size():
            torch.set_rng_state(ranks[dist.rank()].cpu())


def _check_weights(expected: dict, weights: object, path: Path, key: str) -> None:
    """``weights`` are a state dict of exactly ``expected``'s keys and shapes."""
    fix = (
        "resume with the recipe the checkpoint was trained with "
        "(the run folder's config.yaml), or start a new run"
    )
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise CheckpointError(f"checkpoint {str(path)!r}: {key} is not a dict of tensors", fix)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(map(str, set(weights) - set(expected)))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this model ({key}: "
            f"missing {missing[:3]}, unexpected {extra[:3]})",
            fix,
        )
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit this model ({key}.{name} has shape "
                f"{tuple(weights[name].shape)}, the model {tuple(tensor.shape)})",
                fix,
            )


def _check_training_state(state: dict, optimizer: torch.optim.Optimizer) -> None:
    """Raise KeyError/TypeError/ValueError unless the optimizer, history, early-stopping,
    loader and RNG state have the types and sizes this trainer writes."""
    opt = state["optimizer"]
    if not isinstance(opt, dict) or not isinstance(opt.get("param_groups"), list):
        raise TypeError("the optimizer state is not an optimizer state dict")
    if not isinstance(opt.get("state"), dict):
        raise TypeError("the optimizer state has no per-parameter state")
    ours = optimizer.param_groups
    if len(opt["param_groups"]) != len(ours):
        raise ValueError(
            f"the optimizer has {len(opt['param_groups'])} parameter groups, this recipe "
            f"{len(ours)}"
        )
    params = [p for group in ours for p in group["params"]]
    for theirs, mine in zip(opt["param_groups"], ours, strict=True):
        if not isinstance(theirs, dict) or len(theirs.get("params", ())) != len(mine["params"]):
            raise ValueError("the optimizer's parameter groups do not match this model")
    for index, moments in opt["state"].items():
        if not isinstance(index, int) or not 0 <= index < len(params):
            raise ValueError(f"the optimizer state names parameter {index!r}")
        if not isinstance(moments, dict):
            raise TypeError(f"the optimizer state of parameter {index} is not a dict")
        for name, value in moments.items():
            if not isinstance(value, torch.Tensor | int | float) or isinstance(value, bool):
                raise TypeError(f"optimizer {name} of parameter {index} is a {type(value)}")
            shape = value.shape if isinstance(value, torch.Tensor) else ()
            if shape and shape != params[index].shape:
                raise ValueError(
                    f"optimizer {name} of parameter {index} has shape "
                    f"{tuple(shape)}, the parameter {tuple(params[index].shape)}"
                )
    history = state["history"]
    if not isinstance(history, list) or not all(
        isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in history
    ):
        raise TypeError("the history is not a list of epoch records")
    check_stopper_state(state["stopper"])
    loader = state["loader"]
    if not isinstance(loader, dict) or not isinstance(loader.get("generator"), torch.Tensor):
        raise TypeError("the loader state holds no generator state")
    if not isinstance(state["torch_rng"], torch.Tensor) or state["torch_rng"].dtype != torch.uint8:
        raise TypeError("the random-number state is not a byte tensor")
