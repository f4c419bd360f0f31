"""The experiment spec: a YAML recipe validated into typed config objects.

``replab.recipes.load_spec(path, overrides)`` reads a recipe, applies ``a.b=c`` overrides to the raw
mapping (values parsed as YAML, so ``[256,128]`` is a list and ``null`` is None), and
validates the result. Unknown keys anywhere are errors that list the valid keys.
Components (encoder, decoder, head, objective) hold a registry ``name`` plus that
component's own keyword arguments, which are checked against its constructor when built.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_serializer,
    field_validator,
    model_validator,
)

from replab.errors import ConfigError

MAX_RECIPE_BYTES = 1 << 20


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Component(BaseModel):
    """A registered component: ``name`` plus its constructor's keyword arguments."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FixedNormalization(Strict):
    """Fixed statistics: ``(x - mean) / std`` on [0, 1] pixels, a scalar or one value per channel.

    Report 002 normalises every CIFAR-10 channel with mean 0.25 and std 0.25, whatever the
    data's own statistics are; ``standard`` would measure them instead.
    """

    mean: float | list[float] = Field(description="per channel, or one value for all")
    std: float | list[float] = Field(description="per channel, or one value for all; each > 0")

    @field_validator("mean", "std")
    @classmethod
    def _not_empty(cls, value: float | list[float]) -> float | list[float]:
        if isinstance(value, list) and not value:
            raise ValueError("give one value, or one per channel")
        return value

    @field_validator("std")
    @classmethod
    def _positive(cls, value: float | list[float]) -> float | list[float]:
        if any(v <= 0 for v in (value if isinstance(value, list) else [value])):
            raise ValueError("every std must be > 0 (pixels are divided by it)")
        return value


class DataSpec(Strict):
    dataset: str = Field(
        "digits",
        description=(
            "a registered dataset: `replab datasets` lists them, your own images included "
            "(image_folder, npz)"
        ),
    )
    root: str | None = Field(
        None,
        description=(
            "folder holding the dataset (default $REPLAB_DATA, then the cache); "
            "image_folder: your folder of images; npz: your .npz file"
        ),
    )
    download: bool = Field(
        True, description="fetch from the official mirrors when not found locally"
    )
    val_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the training set held out for validation"
    )
    refit: bool = Field(
        False,
        description=(
            "train on the validation images too (a final fit once tuning is done, "
            "as report 003's E3 does); validation figures are then on seen images, "
            "so keep: best and early stopping are refused"
        ),
    )
    test_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="share held out for test when the dataset has no official test split",
    )
    limit_train: PositiveInt | None = Field(
        None, description="use only this many training images (quick profiles)"
    )
    limit_eval: PositiveInt | None = Field(
        None,
        description=(
            "use only this many validation and test images each, class-balanced (quick profiles)"
        ),
    )
    classes: list[str] | None = Field(
        None,
        min_length=1,
        description="keep only these classes, relabelled 0..n-1 in this order (null: all)",
    )
    train_split: str | None = Field(
        None,
        description=(
            "a further split the model trains on, e.g. unlabeled (STL-10's 100,000 unlabelled "
            "images); validation, test, probes and analysis use the labelled splits (null: train)"
        ),
    )
    image_size: PositiveInt | None = Field(
        None,
        le=4096,
        description=(
            "resize every image to NxN once, when loaded "
            "(null: keep the size; an image folder of mixed sizes then needs it)"
        ),
    )
    channels: Literal[1, 3] | None = Field(
        None,
        description=(
            "1: grey, 3: colour, converted once when loaded "
            "(null: as stored; an image folder mixing both becomes colour)"
        ),
    )
    skip_corrupt: bool = Field(
        False,
        description=(
            "image_folder: skip images that cannot be decoded, "
            "saying how many (false: the first one is an error naming it)"
        ),
    )
    resident: bool | Literal["auto"] = Field(
        "auto",
        description=(
            "shards: true holds every split in memory (decoded once), false streams the "
            "training split from its shards, auto holds it when it fits data.resident_budget "
            "and streams it otherwise; other datasets are always held"
        ),
    )
    resident_budget: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description=(
            "shards: the share of the memory free at the start (GPU memory on CUDA) the "
            "decoded splits may take before data.resident=auto streams the training split"
        ),
    )
    shuffle_buffer: int = Field(
        10_000,
        ge=0,
        description="shards, streamed: samples each reader mixes (seeded by the run's seed)",
    )
    workers: int = Field(
        2, ge=0, le=64, description="shards, streamed: processes reading and decoding shards"
    )
    flat_memory: bool = Field(
        False,
        description=(
            "shards, streamed training split: hold memory flatter still than the readers' "
            "heap trims do (glibc's mmap threshold held fixed; measured on 2 cores from "
            "20,000 to 200,000 images: 1.02x instead of 1.2-1.3x, at 0.7 of the training speed)"
        ),
    )
    verify_shards: bool = Field(
        True,
        description=(
            "shards: check every shard's SHA-256 against the index before the run (a local "
            "shard once, remembered in the cache); false checks sizes only, and each shard's "
            "hash as it streams"
        ),
    )
    normalize: Literal["unit", "standard"] | FixedNormalization = Field(
        "unit",
        description=(
            "unit: pixels in [0,1]; standard: "
            "per-channel mean/std of the training split; {mean, std}: fixed values"
        ),
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda|cuda:[0-9]{1,3}|mps)$",
        description="auto, cpu, cuda, cuda:1 or mps: the devices replab trains on",
    )


class PartOptimizerSpec(Strict):
    """Settings for one part of the model that differ from the optimizer's defaults."""

    lr: float | None = Field(None, gt=0.0, le=10.0)
    weight_decay: float | None = Field(None, ge=0.0)


class OptimizerSpec(Strict):
    name: str = Field(
        "adam",
        description="a registered optimizer: adam, adamw, sgd, lars (replab.training.optimizers)",
    )
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="SGD and LARS")
    nesterov: bool = False
    trust_coefficient: float = Field(
        0.001, gt=0.0, description="LARS only: eta in the layer-wise rate eta * |w| / |g + wd w|"
    )
    groups: str = Field(
        "parts",
        description=(
            "how parameters are grouped: parts (one group per entry of parts, one for the rest) "
            "or no_decay_bias_norm (the same, biases and norm weights without weight decay)"
        ),
    )
    parts: dict[str, PartOptimizerSpec] = Field(
        default_factory=dict,
        description=(
            "per-part lr / weight_decay, "
            "e.g. {encoder: {lr: 0.0058}} (report 003 tunes encoder and head apart)"
        ),
    )


class EarlyStoppingSpec(Strict):
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: PositiveInt = 3
    min_delta: float = Field(0.0, ge=0.0)
    restore_best: bool = True


class TrainerSpec(Strict):
    epochs: PositiveInt = Field(10, le=100_000)
    batch_size: PositiveInt = Field(128, le=1_000_000)
    eval_batch_size: PositiveInt = Field(4096, le=10_000_000)
    optimizer: OptimizerSpec = OptimizerSpec()
    early_stopping: EarlyStoppingSpec | None = None
    grad_clip: float | None = Field(None, gt=0.0, description="max gradient norm")
    lr_schedule: str = Field(
        "constant",
        description="a registered schedule: constant, or cosine (the learning rate falls to 0 "
        "along a half cosine over all epochs' steps); see replab.training.schedules",
    )
    warmup_epochs: float = Field(
        0.0,
        ge=0.0,
        description="linear learning-rate warm-up over this many epochs before the schedule",
    )
    keep: Literal["best", "last"] = Field(
        "best",
        description=(
            "weights evaluated after training: "
            "the best validation epoch's, or the last epoch's (reports quoting final-epoch figures)"
        ),
    )
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, off on CPU"
    )
    compile: bool = Field(False, description="torch.compile the model (pays on GPU)")
    sync_batchnorm: bool = Field(
        False,
        description="under torchrun on GPUs, batch norm over the global batch (SyncBatchNorm, "
        "as BYOL and SimCLR train); a single process already sees its whole batch, so no change "
        "there; CPU workers are refused (torch has no CPU SyncBatchNorm)",
    )
    progress: bool = True
    deterministic: bool = Field(
        True, description="deterministic algorithms, so a seed gives the same metrics"
    )


class PretrainedSpec(Strict):
    """Weights copied from an earlier run before training (transfer, studies B4 and C3)."""

    path: str = Field(description="a run folder (its best.pt is used) or a checkpoint file")
    modules: list[str] = Field(
        ["encoder"], min_length=1, description="which parts of the model to copy, e.g. [encoder]"
    )
    blocks: PositiveInt | None = Field(
        None,
        description=(
            "copy only the first k blocks of each module (block-structured encoders: cnn, resnet18)"
        ),
    )
    freeze: bool = Field(False, description="keep the copied weights fixed while training")


class ModelSpec(Strict):
    encoder: Component
    decoder: Component | None = None
    head: Component | None = None
    projection: Component | None = Field(
        None, description="contrastive task: the head the loss sees (SimCLR's projection)"
    )
    predictor: Component | None = Field(
        None,
        description="momentum_contrastive task: a head after the online projection, not copied "
        "to the target (BYOL's predictor; none for MoCo)",
    )
    pretrained: PretrainedSpec | None = None
    freeze: list[str] = Field(
        default_factory=list, description="parts kept fixed while training, e.g. [encoder]"
    )
    init: Literal["default", "kaiming"] = Field(
        "default",
        description="weight initialisation: PyTorch's default, or He-normal for ReLU nets",
    )


class ProbeSpec(Strict):
    """A classifier trained on the frozen encoder's latents."""

    enabled: bool = True
    head: Component = Component(name="mlp_head", hidden=[64])
    trainer: TrainerSpec = TrainerSpec(
        epochs=100,
        batch_size=256,
        early_stopping=EarlyStoppingSpec(monitor="val_accuracy", mode="max", patience=5),
        progress=False,
    )
    linear: bool = Field(
        False,
        description="also a linear probe (one affine map, softmax regression) with the probe's "
        "trainer: the figure self-supervised papers report beside the MLP probe's",
    )
    pixels: bool = Field(
        False,
        description="also the linear probe on the raw pixels of the same split: "
        "the baseline an encoder has to beat",
    )
    finetune: bool = Field(
        False, description="also fine-tune a copy of the encoder with a fresh head on the images"
    )
    shots: list[PositiveInt] = Field(
        [1, 2, 5, 10, 25, 100],
        max_length=20,
        description="the label-efficiency curve: a logistic probe and a cosine kNN on k "
        "labelled train rows per class for each k, scored on the whole test split "
        "(docs/evaluation.md); [] for none",
    )
    draws: PositiveInt = Field(
        5, le=100, description="seeded, stratified draws of the k rows per class, per k"
    )
    finetune_trainer: TrainerSpec = TrainerSpec(
        epochs=10,
        batch_size=128,
        optimizer=OptimizerSpec(lr=1e-3),
        early_stopping=EarlyStoppingSpec(monitor="val_accuracy", mode="max", patience=3),
        progress=False,
    )

    @field_validator("shots")
    @classmethod
    def _shots_sorted(cls, value: list[int]) -> list[int]:
        if value != sorted(set(value)):
            raise ValueError(f"probe.shots must rise, each k once: {value}")
        return value


# What the latent-space monitors add to an epoch's record (replab/evaluation/monitor.py)
MONITOR_METRICS = ("val_knn", "val_rank", "val_linear")


class MonitorSpec(Strict):
    """What a run watches while the encoder trains, every ``every`` epochs, on a fixed seeded
    labelled sample: the train sample is the kNN's memory, the val sample its queries."""

    enabled: bool = Field(
        True,
        description="val_knn (cosine kNN accuracy) and val_rank (effective rank, the collapse "
        "flag) in every epoch's record: curves, trackers, and trainer.early_stopping.monitor",
    )
    every: PositiveInt = Field(1, le=10_000, description="measure every N epochs (and the last)")
    train_size: PositiveInt = Field(5000, le=1_000_000, description="labelled train rows")
    val_size: PositiveInt = Field(2000, le=1_000_000, description="val rows scored")
    knn_k: PositiveInt = Field(20, le=1000)
    linear: bool = Field(
        False,
        description="also val_linear: a logistic probe refitted on the train sample's detached "
        "latents at each measurement (L-BFGS, seconds on CPU)",
    )


class AnalysisSpec(Strict):
    """Latent-space analysis after training (study A's figures, report 003's E4)."""

    enabled: bool = True
    tsne: bool = True
    image_space: bool = Field(
        True,
        description=(
            "also map and score the raw pixels "
            "(a study comparing runs on one test set needs them once)"
        ),
    )
    image_space_ahead: bool = Field(
        True,
        description=(
            "compute the image space while the encoder trains, in a helper process that the "
            "run lends one CPU (it depends only on the test set); off: after training"
        ),
    )
    tsne_sample: PositiveInt | None = Field(
        2500, description="test points mapped by t-SNE (stratified); null maps all of them"
    )
    # Half of openTSNE's 250 exaggerated steps and three-quarters of its 500 others. On 2,500
    # points (MNIST pixels, A1's latents, Fashion-MNIST pixels; 2026-12-02) the maps'
    # trustworthiness moved by at most 0.0006 and their KL divergence by at most 1.1%, in 62-68%
    # of the time: at this size the learning rate n / 12 has the clusters formed long before
    # step 250 (Belkina et al. 2019, opt-SNE). benchmarks/README.md has the table.
    tsne_iterations: tuple[PositiveInt, PositiveInt] = Field(
        (125, 375),
        description=(
            "t-SNE's early-exaggeration iterations, then its normal ones (openTSNE's defaults: "
            "250, 500). At 2,500 points these maps are as faithful (trustworthiness within "
            "0.001 on MNIST pixels and latents and Fashion-MNIST pixels) in two-thirds of the time"
        ),
    )
    knn_k: PositiveInt = Field(5, le=1000)
    knn_metric: Literal["cosine", "euclidean"] = Field(
        "cosine", description="euclidean where distances are what was trained (pair margin)"
    )
    interpolate: tuple[int, int] = Field(
        (7, 2), description="labels of the two test images to interpolate between"
    )
    interpolation_steps: int = Field(10, ge=2, le=50)
    traversal_steps: int = Field(8, ge=2, le=20)
    n_samples: int = Field(16, ge=0, le=400, description="images decoded from random latents")


class ReferenceData(Strict):
    """The data a recipe's reference figures were measured on (the recipe's own data section)."""

    dataset: str
    limit_train: PositiveInt | None = None
    limit_eval: PositiveInt | None = None
    classes: list[str] | None = None
    train_split: str | None = None


# the data settings a published figure depends on: change one and it no longer compares
REFERENCE_DATA_KEYS = tuple(ReferenceData.model_fields)


class ReportSpec(Strict):
    reference: dict[str, float] = Field(
        default_factory=dict, description="published figures, by metric name"
    )
    reference_source: str = ""
    reference_data: ReferenceData | None = Field(
        None,
        description=(
            "the data the reference was measured on; filled from the recipe's own data section "
            "when it is read, so overriding data.* marks the reference not comparable"
        ),
    )
    n_reconstructions: PositiveInt = Field(10, le=100)


class TrackingSpec(Strict):
    """Where a run's metrics go besides its folder (docs/tracking.md)."""

    tensorboard: bool = Field(
        True,
        description="TensorBoard event files in the run folder's tensorboard/ "
        "(`tensorboard --logdir runs/`)",
    )
    mlflow: str | bool | None = Field(
        None,
        description=(
            "an MLflow tracking URI (http://host:5000, sqlite:///mlflow.db, file:///abs/mlruns); "
            "null: $MLFLOW_TRACKING_URI when set; false: never"
        ),
    )
    mlflow_experiment: str = Field(
        "replab", min_length=1, max_length=200, description="the MLflow experiment runs go to"
    )
    projector_points: int = Field(
        2000,
        ge=0,
        le=100_000,
        description="test latents shown in TensorBoard's embedding projector (0: none)",
    )

    @field_validator("mlflow")
    @classmethod
    def _uri(cls, value: str | bool | None) -> str | bool | None:
        if value is True:
            raise ValueError(
                "give the tracking URI itself, e.g. tracking.mlflow=http://127.0.0.1:5000 "
                "(or leave it null to use $MLFLOW_TRACKING_URI)"
            )
        if isinstance(value, str) and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
            raise ValueError(
                "tracking.mlflow must be a URI with a scheme: http://host:5000, "
                "sqlite:///mlflow.db or file:///absolute/mlruns (false: no MLflow)"
            )
        return value


class ExperimentSpec(Strict):
    name: str = Field("experiment", min_length=1, max_length=120)
    description: str = ""
    seed: int = Field(0, ge=0, lt=2**63)
    task: Component = Field(
        Component(name="autoencode"),
        description="a task name, or {name: ..., option: value} for tasks with options",
    )
    data: DataSpec = DataSpec()
    model: ModelSpec
    objective: Component
    augment: list[Component] = Field(
        default_factory=list,
        description="contrastive task: batched on-device augmentations making each view",
    )
    trainer: TrainerSpec = TrainerSpec()
    probe: ProbeSpec = ProbeSpec()
    monitor: MonitorSpec = MonitorSpec()
    analysis: AnalysisSpec = AnalysisSpec()
    report: ReportSpec = ReportSpec()
    tracking: TrackingSpec = TrackingSpec()

    @field_validator("task", mode="before")
    @classmethod
    def _task_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _monitored(self) -> ExperimentSpec:
        # Early stopping reads its metric in every epoch's record: a monitor metric must be
        # measured every epoch.
        es, m = self.trainer.early_stopping, self.monitor
        watched = {"val_knn", "val_rank"} | ({"val_linear"} if m.linear else set())
        if es is None or not es.monitor.startswith(MONITOR_METRICS):
            return self
        if not m.enabled or m.every != 1 or es.monitor not in watched:
            raise ValueError(
                f"trainer.early_stopping.monitor {es.monitor!r} is measured by the monitor: "
                "set monitor.enabled: true and monitor.every: 1"
                + ("" if es.monitor != "val_linear" else " and monitor.linear: true")
            )
        return self

    @model_validator(mode="after")
    def _refit_needs_last(self) -> ExperimentSpec:
        # With refit the validation images are trained on: choosing an epoch by them would
        # be choosing by training figures.
        if self.data.refit and (
            self.trainer.keep == "best" or self.trainer.early_stopping is not None
        ):
            raise ValueError(
                "data.refit trains on the validation images, so they cannot pick the epoch: "
                "set trainer.keep: last and no trainer.early_stopping (or data.refit: false)"
            )
        return self

    @field_serializer("task")
    def _task_short(self, task: Component) -> str | dict:
        """``task: classify`` stays one word in a saved config; options make it a mapping."""
        return task.model_dump() if task.params else task.name


def reference_note(spec: ExperimentSpec) -> str | None:
    """None when the reference figures compare with this run; else why not, e.g.
    "not comparable (reference measured on mnist, full train split)"."""
    measured = spec.report.reference_data
    if not spec.report.reference or measured is None:
        return None
    if all(getattr(measured, k) == getattr(spec.data, k) for k in REFERENCE_DATA_KEYS):
        return None
    return f"not comparable (reference measured on {describe_data(measured)})"


def describe_data(d: ReferenceData | DataSpec) -> str:
    """mnist, full train split / cifar10, classes frog, horse, 1,000 training images"""
    parts = [d.dataset]
    if d.classes:
        parts.append("classes " + ", ".join(d.classes))
    if d.train_split:
        parts.append(f"train split {d.train_split}")
    parts.append(f"{d.limit_train:,} training images" if d.limit_train else "full train split")
    if d.limit_eval:
        parts.append(f"{d.limit_eval:,} validation and test images")
    return ", ".join(parts)


def with_reference_data(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a recipe as read) with ``report.reference_data`` set from its own data section
    where it has reference figures and does not say already what they were measured on.

    Called before any override, so ``data.dataset=fashion_mnist`` on an MNIST recipe leaves
    the reference tied to MNIST, and the run's report marks it not comparable."""
    report, data = raw.get("report"), raw.get("data") or {}
    if not isinstance(report, dict) or not report.get("reference") or not isinstance(data, dict):
        return raw
    if "reference_data" in report:
        return raw
    fields = DataSpec.model_fields
    report["reference_data"] = {k: data.get(k, fields[k].default) for k in REFERENCE_DATA_KEYS}
    return raw


def same_training(a: ExperimentSpec, b: ExperimentSpec) -> bool:
    """Whether two specs train and evaluate the same run: how it is reported and tracked aside
    (a study resumed with TensorBoard off, or by a newer replab, still reuses its runs)."""
    skip = {"report", "tracking"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip) and (
        a.report.model_dump(exclude={"reference_data"})
        == b.report.model_dump(exclude={"reference_data"})
    )


# --- code named by import path ------------------------------------------------------------

# The keys whose value is a registry name (a component's, data.dataset, an optimizer's...):
# ``package.module:Class`` there is code that building the run imports.
NAME_KEYS = frozenset({"name", "dataset", "groups", "lr_schedule"})
ANALYZED = "given:"  # the encoder of an analyze run's config: a label, never built


def code_names(raw: Any) -> list[str]:
    """``key.path=package.module:Name`` for every registry name in ``raw`` (a recipe as read,
    or a spec) that names code by import path: what building it would import.

    Every component (``name`` at any depth, ``task`` as one word) counts, and data.dataset,
    trainer.optimizer.name/groups and trainer.lr_schedule, at any depth (probe trainers); the
    experiment's own top-level ``name`` is a title, not a registry name.
    """
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json")
    found: list[str] = []
    analyzed = isinstance(raw, dict) and raw.get("task") == "analyze"

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = (*path, key)
                if isinstance(value, str) and ":" in value and _names_code(here):
                    if not (analyzed and here[:2] == ("model", "encoder") and _given(value)):
                        found.append(f"{'.'.join(map(str, here))}={value}")
                else:
                    walk(value, here)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, (*path, i))

    walk(raw, ())
    return found


def _names_code(path: tuple) -> bool:
    if path == ("name",):  # the experiment's title
        return False
    return path == ("task",) or path[-1] in NAME_KEYS


def _given(value: str) -> bool:
    return value.startswith(ANALYZED)


def override_code_names(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """``code_names`` of what ``key.path=value`` overrides set (a study's ``PART:`` prefix
    already removed); an override that does not parse sets nothing."""
    found: list[str] = []
    for override in overrides:
        raw: dict[str, Any] = {}
        try:
            apply_override(raw, override)
        except ConfigError:
            continue
        found += code_names(raw)
    return found


# --- loading -----------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases: recipes never need them
    and they enable YAML bombs."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases (*name) are not allowed in recipes", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        # PyYAML keeps the last of two equal keys silently; a recipe with `lr` twice is a mistake
        # whose second value may not be the one the author meant. Keys compare as constructed,
        # so `1` and `0x1` (both the integer 1) are duplicates too.
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: PyYAML's own error says so below
                    continue
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found the key {key!r} twice (first on line {first.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{where} is not valid YAML: {_yaml_problem(err)}",
            "fix the YAML syntax at the line shown",
        ) from None
    except (ValueError, OverflowError, TypeError) as err:
        # a tag's constructor refusing its value: `2026-02-30` (no such date), `!!int x`, ...
        first = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise ConfigError(
            f"{where} is not valid YAML: a value is not what its type says ({first})",
            "quote the value to make it a string, or write a valid one (dates: YYYY-MM-DD)",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{where} is nested too deeply to be a recipe",
            "a recipe is a few levels of keys; check you passed the right file",
        ) from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's error on one line: what is wrong and where (its own text spans several lines,
    with a caret under the spot)."""
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if not problem:
        return " ".join(str(err).split())[:300]
    context = getattr(err, "context", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"[:300]


def read_yaml_file(path: str | Path, what: str, bundled, names: list[str]) -> Any:
    """Parse a small YAML file: ``path``, else the bundled file of that name (``bundled(name)``).

    ``what`` names the kind of file in errors ("recipe", "search space"); too large, not UTF-8,
    missing or malformed files are ConfigErrors that say so.
    """
    path = Path(path)
    try:
        if not path.is_file():
            path = bundled(str(path)) or path
        found = path.is_file()
        size = path.stat().st_size if found else 0
    except (OSError, ValueError) as err:  # a name longer than the file system allows, a NUL
        raise ConfigError(
            f"{what} {str(path)[:120]!r} cannot be opened: {getattr(err, 'strerror', None) or err}",
            f"pass the path of a {what} .yaml file or a bundled one: {', '.join(names) or 'none'}",
        ) from None
    if not found:
        raise ConfigError(
            f"{what} {str(path)!r} does not exist",
            f"pass the path of a {what} .yaml file or a bundled one: {', '.join(names) or 'none'}",
        )
    if size > MAX_RECIPE_BYTES:
        raise ConfigError(
            f"{what} {str(path)!r} is larger than 1 MiB",
            f"a {what} is a short YAML file; check you passed the right file",
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{what} {str(path)!r} is not UTF-8 text "
            f"(byte {err.object[err.start]:#04x} at offset {err.start})",
            f"a {what} is a UTF-8 YAML file; "
            "check you passed the right file, or re-save it as UTF-8",
        ) from None
    return parse_yaml(text, f"{what} {str(path)!r}")


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``a.b.c=value`` override in place."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.isidentifier() for part in key.split(".")):
        raise ConfigError(
            f"override {override!r} is not of the form key.path=value",
            "write e.g. trainer.epochs=3 or model.encoder.hidden=[512,256]",
        )
    value = parse_yaml(text, f"the value of override {key!r}") if text.strip() else None
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"override {key!r}: {'.'.join(parts[: i + 1])} is a value, not a section",
                f"set {'.'.join(parts[: i + 1])}=... directly",
            )
        node = child
    node[parts[-1]] = value


def with_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A deep copy of ``raw`` with ``overrides`` (``a.b.c=value``) applied in
    order; ``raw`` is left as it is."""
    out = copy.deepcopy(raw)
    for override in overrides:
        apply_override(out, override)
    return out


def validate_spec(raw: dict[str, Any]) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(
            _describe(err),
            "correct the recipe or the override; `replab run --help` shows the syntax",
        ) from None


def spec_to_yaml(spec: ExperimentSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def _describe(err: pydantic.ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            valid = _valid_keys(e["loc"][:-1])
            lines.append(f"unknown key {loc!r} (valid keys here: {', '.join(valid)})")
        elif e["type"] == "missing":
            lines.append(f"missing required key {loc!r}")
        else:
            lines.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return "invalid recipe: " + "; ".join(lines)


def _valid_keys(loc: tuple) -> list[str]:
    model: Any = ExperimentSpec
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        model = _model_of(field.annotation)
        if model is None:
            return []
    return sorted(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
