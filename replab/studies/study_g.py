"""Study G: which latent space is best? Eleven ways to train one encoder, measured one way.

An autoencoder, a VAE, a masked autoencoder (MAE), a supervised classifier (the upper
reference, it sees the labels) and seven self-supervised methods (SimCLR, BYOL, MoCo v2,
Barlow Twins, VICReg, DINO, SimSiam) train the same encoder (the dataset's own, or
``--set backbone=``) on the same images for the same number of optimizer steps (same epochs
and batch size, no early stopping, the last weights kept), with the same optimizer and, for
the methods that use views, the same augmentations. Every encoder is then measured the same
way: linear and MLP probes on its frozen latents, the label-efficiency curve (a logistic
probe on 1 to 100 labels per class), cosine kNN with k = 20 (as the SSL literature reports
it), silhouette, t-SNE trustworthiness and the effective rank (RankMe), which shows a
collapse the loss may hide. The raw pixels are measured too, as the floor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from replab.data import DATASETS
from replab.errors import ConfigError
from replab.evaluation.label_efficiency import paired_lead
from replab.evaluation.separability import Separability
from replab.objectives import OBJECTIVES
from replab.recipes import load_spec, read_recipe
from replab.reporting.figures import plt, to_png
from replab.reporting.latent_figures import tsne_maps
from replab.reporting.study_report import Section, StudyReport, format_mean_std
from replab.runs import rundir, schema
from replab.search.sweep import mean_and_std
from replab.studies.framework import STUDIES, Part, StudyRun
from replab.studies.label_budget import TEXT as BUDGET_TEXT
from replab.studies.label_budget import Budget, budget_of, budget_section, by_budget
from replab.studies.prose import fill, paragraphs
from replab.studies.summaries import settings_of, subset_note, timings_of


@dataclass(frozen=True)
class Method:
    key: str
    title: str
    recipe: str  # the recipe of the method on MNIST; "mnist" becomes "cifar10" for RGB data
    changes: tuple[str, ...] = ()
    views: bool = False  # trained on augmented views: gets the protocol's augment list
    labels: bool = False  # sees the labels: a reference, not a contender


METHODS = (
    Method("AE", "autoencoder (L1 reconstruction)", "a1-mnist-autoencoder"),
    Method(
        "VAE",
        "variational autoencoder (ELBO)",
        "a1-mnist-autoencoder",
        ("task=vae", "objective={name: elbo, reconstruction: bce, reduction: sum}"),
    ),
    # MAE's recipe trains the small ViT; here it masks patches of the study's encoder's input
    # (the encoder sees only the visible patches when it is a ViT, tasks/mae.py)
    Method("MAE", "masked autoencoder (MAE, 75% of 4 px patches hidden)", "a5-mnist-mae"),
    Method("SUP", "supervised classifier", "a2-mnist-classifier", labels=True),
    Method("SimCLR", "SimCLR (NT-Xent)", "a3-mnist-simclr", views=True),
    Method("BYOL", "BYOL (predictor, momentum target)", "a3-mnist-byol", views=True),
    Method("MoCo", "MoCo v2 (momentum encoder, queue)", "a3-mnist-moco", views=True),
    Method(
        "Barlow",
        "Barlow Twins (cross-correlation)",
        "a3-mnist-simclr",
        ("objective={name: barlow_twins}",),
        views=True,
    ),
    Method(
        "VICReg",
        "VICReg (variance, invariance, covariance)",
        "a3-mnist-simclr",
        ("objective={name: vicreg}",),
        views=True,
    ),
    # Their own recipes, not the auto-joined A3 one: DINO needs its head (the A3 projection
    # head gave kNN 0.78 on the quick profile, the DINO head 0.93), SimSiam its predictor.
    Method(
        "DINO",
        "DINO (self-distillation: EMA teacher, centring, sharpening)",
        "a5-mnist-dino",
        views=True,
    ),
    Method("SimSiam", "SimSiam (predictor, stop-gradient)", "a5-mnist-simsiam", views=True),
)

# The task that trains an objective of each view-based kind (``objective.target``).
VIEW_TASKS = {"views": "contrastive", "momentum": "momentum_contrastive"}
PREDICTOR = "{name: projection_head, hidden: [256], out_dim: 128, batchnorm: true}"


@cache
def covered_objectives() -> frozenset[str]:
    """The objectives the methods above train: what each one's recipe, with its changes,
    resolves ``objective.name`` to."""
    return frozenset(load_spec(m.recipe, m.changes).objective.name for m in METHODS)


def all_methods() -> list[Method]:
    """The eight above, then every other registered objective trained on two views: a new
    self-supervised objective file joins the study with no change here. It trains A3's
    SimCLR recipe with its own objective (and a predictor if it sets ``uses_predictor``)."""
    extra = []
    covered = covered_objectives()  # eight recipes read and validated: once, not per objective
    for name in OBJECTIVES.names():
        cls = OBJECTIVES.get(name)
        kind = getattr(cls, "target", None)
        if name in covered or kind not in VIEW_TASKS:
            continue
        changes = [f"task={VIEW_TASKS[kind]}", f"objective={{name: {name}}}"]
        if getattr(cls, "uses_predictor", False):
            changes.append(f"model.predictor={PREDICTOR}")
        title = ((cls.__doc__ or name).strip().splitlines() or [name])[0].rstrip(".")
        extra.append(Method(name, title, "a3-mnist-simclr", tuple(changes), views=True))
    return [*METHODS, *extra]


# One encoder per kind of image: the A-study MLP on small grey images, study A's ResNet-18
# on colour ones (the encoders of study A, so the two studies' figures speak of one network);
# the decoder of the two autoencoders is an MLP that fits either.
FAMILIES: dict[str, dict] = {
    "grey": {
        "encoder": "{name: mlp, hidden: [256], latent_dim: 128}",
        "decoder": "{name: mlp_decoder, hidden: [256], output_activation: sigmoid}",
        "probe": "{name: mlp_head, hidden: [64]}",
        "views": "a3-mnist-simclr",
        # 28 px: 14, 7, then 3 (a 3x3 kernel without padding)
        "conv": "{name: conv, channels: [32, 64, 128], kernels: [4, 4, 3], strides: 2, "
        "paddings: [1, 1, 0], latent_dim: 128}",
    },
    "colour": {
        "encoder": "{name: resnet18, stem: cifar, width: 64}",
        "decoder": "{name: mlp_decoder, hidden: [1024], output_activation: sigmoid}",
        "probe": "{name: mlp_head, hidden: [256, 128], dropout: 0.5}",
        "views": "a3-cifar10-simclr",
        "conv": "{name: conv, channels: [64, 128, 256], kernels: 4, strides: 2, paddings: 1, "
        "latent_dim: 128}",
    },
}
# ``--set backbone=``: the same encoder for every method, in place of the family's. The
# small ViT is the 28-32 px one (patch 4: a 7x7 or 8x8 grid); timm:<name> is any timm
# model with its classifier removed (models/timm_backbone.py adapts channels and size).
BACKBONES = {
    "mlp": FAMILIES["grey"]["encoder"],
    "conv": None,  # the family's: one for 28 px, one for 32 px
    "resnet18": FAMILIES["colour"]["encoder"],
    "vit": "{name: vit, patch_size: 4, width: 192, depth: 6, heads: 3}",
}
# The quick profile's ViT: 2 blocks of width 96 (the full one costs several seconds a step of
# 256 images on a 2-core CPU; this one under 2)
QUICK_VIT = "{name: vit, patch_size: 4, width: 96, depth: 2, heads: 3}"
MEASURES = (
    ("linear_probe.test_accuracy", "linear probe"),
    ("probe.test_accuracy", "MLP probe"),
    ("latent.knn_accuracy", "kNN-20 (cosine)"),
    ("latent.silhouette", "silhouette"),
    ("latent.tsne_trustworthiness", "trustworthiness"),
    ("latent.effective_rank", "effective rank"),
)
RANKED = MEASURES[:5]  # higher is better; the effective rank is read for collapse instead
# The label-efficiency curve (probe.shots): its area over log k and three of its points, the
# linear probe on k labelled train rows per class, mean over the seeds' draws.
BUDGET = (
    ("shots.linear.auc", "label-curve area"),
    ("shots.linear.k1", "1 label / class"),
    ("shots.linear.k10", "10 / class"),
    ("shots.linear.k100", "100 / class"),
)
SHOWN = (1, 2, 5, 10, 25, 100)  # the budgets the label-budget table shows (those measured)
# An effective rank under 2: the latents lie on about one line (or one point) — the complete
# collapse a self-supervised loss can reach while its value still looks fine.
COLLAPSED = 2.0
# t-SNE (and so trustworthiness and the maps) is left out of the quick profile: at this size it
# would cost more than all eight methods' training.
QUICK = [
    "data.limit_train=4000",
    "trainer.epochs=3",
    "analysis.tsne=false",
    "probe.trainer.epochs=20",
]
# Published elsewhere, for context only: other budgets (800-1000 epochs on a GPU), the
# full CIFAR-10 and other protocols. Never compared with this study's measurements.
PUBLISHED = [
    ("SimCLR", "90.74", "0.879"),
    ("BYOL", "92.58", "0.910"),
    ("MoCo", "91.88 (MoCo v2+)", "0.899"),
    ("Barlow", "92.10", "0.859"),
    ("VICReg", "92.07", "—"),
]


@dataclass
class Row:
    """One line of the table: a method's runs over seeds (or the pixels)."""

    key: str
    title: str
    values: dict[str, list[float]]
    seconds: list[float] = field(default_factory=list)  # training time per seed
    labels: bool = False
    baseline: bool = False
    # the label-curve columns per (seed, draw): their leads are paired draw by draw, as the
    # label-budget section reads them
    draws: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, metric: str) -> float | None:
        return mean_and_std(self.values.get(metric, []))[0]

    def std(self, metric: str) -> float:
        return mean_and_std(self.values.get(metric, []))[1] or 0.0

    def cell(self, metric: str) -> str:
        values = self.values.get(metric, [])
        return format_mean_std(*mean_and_std(values)) if values else "—"


@STUDIES.register("g")
class StudyG:
    """Which latent space is best? Autoencoder, VAE, MAE, supervised, SimCLR, BYOL, MoCo v2,
    Barlow Twins, VICReg, DINO and SimSiam on one encoder and budget, by label budget"""

    def __init__(
        self,
        dataset: str = "mnist",
        epochs: int = 10,
        batch_size: int = 256,
        methods: list[str] | None = None,
        backbone: str | None = None,
    ) -> None:
        if not 1 <= epochs <= 10_000 or not 2 <= batch_size <= 1_000_000:
            raise ConfigError(
                f"study g: epochs {epochs} and batch_size {batch_size} are out of range",
                "use --set epochs=N (1 or more) and --set batch_size=N (2 or more)",
            )
        available = all_methods()
        keys = [m.key for m in available]
        unknown = sorted(set(methods or []) - set(keys))
        if unknown or methods == []:
            raise ConfigError(
                f"study g: no method {unknown[0]!r}" if unknown else "study g: methods is empty",
                f"use --set methods=[...] with some of: {', '.join(keys)} (default: all)",
            )
        self.family = _family(dataset)  # an unknown dataset fails before any folder exists
        self.encoder = backbone_encoder(backbone, FAMILIES[self.family])
        self.backbone = backbone
        self.dataset, self.epochs, self.batch_size = dataset, epochs, batch_size
        self.methods = [m for m in available if methods is None or m.key in methods]

    def run(self, s: StudyRun) -> StudyReport:
        family = FAMILIES[self.family]
        parts = [
            s.part(
                m.key,
                m.title,
                _recipe(m.recipe, family),
                self._changes(m, family),
                quick=QUICK + ([f"model.encoder={QUICK_VIT}"] if self.backbone == "vit" else []),
            )
            for m in self.methods
        ]
        pairs = list(zip(self.methods, parts, strict=True))
        rows = [*_pixels_row(pairs), *(_row(m, p) for m, p in pairs)]
        budgets = _budgets(pairs)
        return StudyReport(
            title=fill(TEXT["title"], dataset=self.dataset),
            question=fill(TEXT["question"]),
            settings=settings_of(s, parts),
            reference=[],
            timings=timings_of(parts),
            sections=[
                self._table(rows, parts),
                _answer(rows, budgets),
                _budget_section(budgets),
                _charts(rows),
                _maps(parts),
                _published(),
            ],
            source=fill(TEXT["source"]),
        )

    def _changes(self, m: Method, family: dict) -> list[str]:
        changes = [
            f"data.dataset={self.dataset}",
            f"name=g-{m.key.lower()}-{self.dataset}",
            f"model.encoder={self.encoder}",
            f"trainer.epochs={self.epochs}",
            f"trainer.batch_size={self.batch_size}",
            "trainer.early_stopping=null",  # every method takes the same number of steps
            "trainer.keep=last",
            "trainer.optimizer={name: adam, lr: 0.001}",
            "trainer.lr_schedule=constant",
            "trainer.warmup_epochs=0",
            "probe.enabled=true",
            "probe.linear=true",
            f"probe.head={family['probe']}",
            "analysis.knn_k=20",
            "analysis.knn_metric=cosine",
            "report.reference={}",  # the recipes' figures belong to their own settings
            *m.changes,
        ]
        if m is self.methods[0]:  # the pixels are scored once, beside the first method
            changes += ["analysis.image_space=true", "probe.pixels=true"]
        else:
            changes.append("analysis.image_space=false")
        if m.key in ("AE", "VAE"):
            changes.append(f"model.decoder={family['decoder']}")
        if m.views:
            changes.append(f"augment={json.dumps(self._views(family))}")
        return changes

    def _views(self, family: dict) -> list[dict]:
        """The augmentations every view-based method trains with: A3's for the family."""
        return list(read_recipe(family["views"]).get("augment", []))

    def _table(self, rows: list[Row], parts: list[Part]) -> Section:
        ranked = [*RANKED, *BUDGET]
        header = ["method", *(name for _, name in ranked), "effective rank", "train s"]
        best = {m: _best(rows, m) for m, _ in ranked}
        body = []
        for r in rows:
            cells = [r.cell(m) + (" ★" if _first(best[m]) is r else "") for m, _ in ranked]
            rank = r.cell("latent.effective_rank") + (" (collapsed)" if _collapsed(r) else "")
            seconds = format_mean_std(*mean_and_std(r.seconds), digits=3) if r.seconds else "—"
            body.append([f"{r.key}: {r.title}", *cells, rank, seconds])
        body.append(["lead of ★ > paired spread?", *(_gap(best[m], m) for m, _ in ranked)])
        body[-1] += ["", ""]
        text = paragraphs(
            TEXT["table"],
            seeds=len(parts[0].summaries),
            epochs=parts[0].summaries[0]["epochs"],
            batch=self.batch_size,
            collapsed=COLLAPSED,
            encoder=self.encoder,
        )
        if note := subset_note(parts):
            text.append(note)
        return Section(fill(TEXT["table.heading"]), text, table=(header, body))


def backbone_encoder(backbone: str | None, family: dict) -> str:
    """The encoder every method trains: the family's own, or ``backbone`` (one of
    ``BACKBONES``, or ``timm:<any timm model>``, built for the data's channels and size)."""
    if backbone is None:
        return family["encoder"]
    name = backbone.removeprefix("timm:")
    if backbone.startswith("timm:") and re.fullmatch(r"[A-Za-z0-9_.]+", name):
        return f"{{name: timm, model: {name}}}"
    if backbone in BACKBONES:
        return BACKBONES[backbone] or family[backbone]
    raise ConfigError(
        f"study g: no backbone {backbone!r}",
        f"use --set backbone= with one of {', '.join(BACKBONES)} or timm:<a timm model name> "
        "(e.g. timm:resnet18); leave it unset for the dataset's own (mlp on grey images, "
        "resnet18 on colour ones)",
    )


def _family(dataset: str) -> str:
    """Colour datasets take the ResNet-18 family; anything else (MNIST-like, a user's grey
    images, a dataset of unknown shape) the MLP one."""
    if dataset not in DATASETS.names():
        raise ConfigError(
            f"study g: no dataset {dataset!r}",
            f"use --dataset with one of: {', '.join(DATASETS.names())}",
        )
    return "colour" if DATASETS.get(dataset)().shape[:1] == (3,) else "grey"


def _recipe(recipe: str, family: dict) -> str:
    return recipe.replace("mnist", "cifar10") if family is FAMILIES["colour"] else recipe


def _row(m: Method, p: Part) -> Row:
    metrics = {name: p.values(name) for name, _ in (*MEASURES, *BUDGET)}
    seconds = [s["timings"]["train"] for s in p.summaries]
    row = Row(m.key, m.title, metrics, seconds, labels=m.labels)
    row.draws = _draw_values(budget_of(m.key, p))
    return row


def _draw_values(b: Budget | None) -> dict[str, list[float]]:
    """The BUDGET columns' values per (seed, draw) of curve ``b``."""
    if b is None:
        return {}
    out = {f"shots.linear.k{k}": list(v) for k, v in b.draws.items()}
    return {**out, "shots.linear.auc": list(b.aucs)}


def _pixels_row(pairs: list[tuple[Method, Part]]) -> list[Row]:
    """The raw pixels of the same test set, scored beside the first method's run."""
    first = pairs[0][1]
    names = {
        "linear_probe.test_accuracy": "image.linear_probe.test_accuracy",
        "latent.knn_accuracy": "image.knn_accuracy",
        "latent.silhouette": "image.silhouette",
        "latent.tsne_trustworthiness": "image.tsne_trustworthiness",
        "latent.effective_rank": "image.effective_rank",
        **{name: f"image.{name}" for name, _ in BUDGET},
    }
    values = {ours: first.values(theirs) for ours, theirs in names.items()}
    row = Row("pixels", "raw pixels (no training)", values, baseline=True)
    row.draws = _draw_values(budget_of("pixels", first, pixels=True))
    return [row]


def _collapsed(r: Row) -> bool:
    rank = r.mean("latent.effective_rank")
    return rank is not None and rank < COLLAPSED


def _best(rows: list[Row], metric: str) -> tuple[Row, Row | None] | None:
    """The best and second-best contender on ``metric`` (methods trained without labels)."""
    ranked = sorted(
        (r for r in rows if not r.labels and not r.baseline and r.mean(metric) is not None),
        key=lambda r: r.mean(metric) or 0.0,
        reverse=True,
    )
    return (ranked[0], ranked[1] if len(ranked) > 1 else None) if ranked else None


def _gap(best: tuple[Row, Row | None] | None, metric: str) -> str:
    """Whether the best contender's lead exceeds the spread of its paired differences."""
    if best is None or best[1] is None:
        return "—"
    if len(best[0].values.get(metric, [])) < 2:
        return "n/a (one seed)"
    gap, spread = paired_gap(best, metric) or (0.0, 0.0)
    return f"{'yes' if gap > spread else 'no'} ({gap:.3g} vs {spread:.2g})"


def _first(best: tuple[Row, Row | None] | None) -> Row | None:
    return best[0] if best else None


def paired_gap(best: tuple[Row, Row | None] | None, metric: str) -> tuple[float, float] | None:
    """(the first's mean lead, its spread): paired seed by seed (every row's values are in
    seed order, the pixels' from the same seeds' runs) or, for the label-curve columns, by
    (seed, draw); the spread is the standard deviation of the paired differences; unpaired
    rows, the two deviations added up."""
    if best is None or best[1] is None:
        return None
    a, b = best[0].values.get(metric, []), best[1].values.get(metric, [])
    if metric in best[0].draws and metric in best[1].draws:  # paired draw by draw
        a, b = best[0].draws[metric], best[1].draws[metric]
    if len(a) == len(b) >= 2:
        mean, std, _, _ = paired_lead(a, b)
        return mean, std
    gap = (best[0].mean(metric) or 0.0) - (best[1].mean(metric) or 0.0)
    return gap, best[0].std(metric) + best[1].std(metric)


def _budgets(pairs: list[tuple[Method, Part]]) -> list[Budget]:
    """Every method's linear label-efficiency curve, the pixels' first (drawn beside the first
    method's runs, on the same draws)."""
    found = [budget_of("pixels", pairs[0][1], pixels=True)]
    found += [budget_of(m.key, p, labels=m.labels) for m, p in pairs]
    return [b for b in found if b is not None]


def _budget_section(budgets: list[Budget]) -> Section:
    """The label-budget table (mean ± std over seeds and draws) and every curve in one chart."""
    return budget_section(
        budgets,
        fill(TEXT["budget.heading"]),
        paragraphs(TEXT["budget"], draws=budgets[0].draws_per_seed) if budgets else [],
        "test accuracy against labels per class (linear probe)",
        SHOWN,
    )


def _answer(rows: list[Row], budgets: list[Budget]) -> Section:
    """What the numbers say, from the numbers: the ranking, whether the seeds support it,
    the leader at each label budget (paired), the pixels floor, the supervised ceiling,
    collapse and cost."""
    metric = "linear_probe.test_accuracy"
    contenders = [r for r in rows if not r.labels and not r.baseline and r.mean(metric)]
    ranked = sorted(contenders, key=lambda r: r.mean(metric) or 0.0, reverse=True)
    order = " > ".join(fill(TEXT["answer.item"], key=r.key, value=r.mean(metric)) for r in ranked)
    text = [fill(TEXT["answer.ranked"], order=order), _support(ranked, metric)]
    knn = max(contenders, key=lambda r: r.mean("latent.knn_accuracy") or 0.0)
    agreement = "answer.knn_agrees" if knn is ranked[0] else "answer.knn_differs"
    text.append(
        fill(
            TEXT["answer.knn"],
            key=knn.key,
            knn=knn.mean("latent.knn_accuracy"),
            agreement=fill(TEXT[agreement]),
        )
    )
    text += by_budget(budgets, BUDGET_TEXT)
    text += _floor_and_ceiling(rows, ranked, metric)
    collapsed = [r.key for r in rows if _collapsed(r)]
    text.append(
        fill(TEXT["answer.collapsed"], rank=COLLAPSED, keys=", ".join(collapsed))
        if collapsed
        else fill(TEXT["answer.no_collapse"], rank=COLLAPSED)
    )
    timed = [r for r in rows if r.seconds]
    cheap, dear = min(timed, key=_seconds), max(timed, key=_seconds)
    text.append(
        fill(
            TEXT["answer.cost"],
            cheap=cheap.key,
            cheap_s=_seconds(cheap),
            dear=dear.key,
            dear_s=_seconds(dear),
        )
    )
    return Section(fill(TEXT["answer.heading"]), text)


def _support(ranked: list[Row], metric: str) -> str:
    if len(ranked) < 2 or len(ranked[0].values[metric]) < 2:
        return fill(TEXT["support.one_seed"])
    gap, spread = paired_gap((ranked[0], ranked[1]), metric) or (0.0, 0.0)
    return fill(
        TEXT["support"],
        first=ranked[0].key,
        second=ranked[1].key,
        gap=gap,
        verdict="exceeds" if gap > spread else "does not exceed",
        spread=spread,
        seeds=len(ranked[0].values[metric]),
        settled=fill(TEXT["support.settled" if gap > spread else "support.unsettled"]),
    )


def _floor_and_ceiling(rows: list[Row], ranked: list[Row], metric: str) -> list[str]:
    out = []
    pixels = next((r for r in rows if r.baseline), None)
    floor = pixels.mean(metric) if pixels else None
    if floor is not None:
        below = [r.key for r in ranked if (r.mean(metric) or 0.0) <= floor]
        verdict = (
            fill(TEXT["floor.below"], keys=", ".join(below)) if below else fill(TEXT["floor.above"])
        )
        out.append(fill(TEXT["floor"], floor=floor, verdict=verdict))
    sup = next((r for r in rows if r.labels), None)
    if sup is not None and sup.mean(metric) is not None and ranked:
        gap = (sup.mean(metric) or 0.0) - (ranked[0].mean(metric) or 0.0)
        verdict = (
            fill(TEXT["ceiling.labels"], gap=gap)
            if gap > 0
            else fill(TEXT["ceiling.matched"], key=ranked[0].key)
        )
        out.append(fill(TEXT["ceiling"], accuracy=sup.mean(metric), verdict=verdict))
    return out


def _seconds(r: Row) -> float:
    return float(np.mean(r.seconds))


def _charts(rows: list[Row]) -> Section:
    return Section(
        fill(TEXT["charts.heading"]),
        paragraphs(TEXT["charts"]),
        figures={
            "every measure, mean ± std over seeds": _bars(rows),
            "linear probe against training time": _cost(rows),
        },
    )


def _bars(rows: list[Row]) -> bytes:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    colours = plt.get_cmap("tab10")
    for ax, (metric, name) in zip(axes.flat, MEASURES, strict=True):
        shown = [r for r in rows if r.mean(metric) is not None]
        x = np.arange(len(shown))
        ax.bar(
            x,
            [r.mean(metric) or 0.0 for r in shown],
            yerr=[r.std(metric) for r in shown],
            color=[colours(rows.index(r) % 10) for r in shown],
            capsize=3,
        )
        ax.set_xticks(x, [r.key for r in shown], rotation=45, fontsize=8)
        ax.set_title(name, fontsize=10)
        values = [r.mean(metric) or 0.0 for r in shown]
        if values and metric != "latent.effective_rank" and min(values) > 0:
            ax.set_ylim(min(values) * 0.95, min(1.0, max(values) * 1.02) + 1e-3)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def _cost(rows: list[Row]) -> bytes:
    metric = "linear_probe.test_accuracy"
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, r in enumerate(r for r in rows if r.seconds and r.mean(metric) is not None):
        ax.errorbar(
            _seconds(r),
            r.mean(metric) or 0.0,
            yerr=r.std(metric),
            fmt="o",
            color=plt.get_cmap("tab10")(i % 10),
            capsize=3,
        )
        ax.annotate(
            r.key,
            (_seconds(r), r.mean(metric) or 0.0),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set(xlabel="training time per seed (s)", ylabel="linear probe test accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def _maps(parts: Sequence[Part]) -> Section:
    """The t-SNE maps of every method's first seed, on the same stratified test sample."""
    panels = []
    ref = None
    for p in parts:
        path = p.run_dirs[0] / rundir.FIGURES / rundir.TSNE_DATA
        if not path.is_file():
            continue
        maps = schema.read_checked(schema.TsneMaps, path, f"delete {path} and resume the study")
        latent = next(sp for sp in maps["spaces"] if sp["name"] == "latent space")
        if latent.get("points") is None:
            continue
        ref = ref or maps
        panels.append((p.key, np.asarray(latent["points"]), _scores(latent["scores"])))
    figures = {}
    if panels and ref is not None:
        rows = [panels[i : i + 4] for i in range(0, len(panels), 4)]
        for n, row in enumerate(rows, 1):
            figures[f"t-SNE of the same test sample ({n}/{len(rows)})"] = tsne_maps(
                row, np.asarray(ref["labels"]), ref["classes"]
            )
    return Section(fill(TEXT["maps.heading"]), paragraphs(TEXT["maps"]), figures=figures)


def _scores(scores: dict) -> Separability:
    return Separability(**scores)


def _published() -> Section:
    header = ["method", "solo-learn: linear top-1 %", "lightly: kNN accuracy"]
    return Section(
        fill(TEXT["published.heading"]),
        paragraphs(TEXT["published"]),
        table=(header, [list(row) for row in PUBLISHED]),
    )


# --- The report's text ----------------------------------------------------------------------------
# Filled by the functions above (placeholders in braces); replab/studies/prose.py says how a
# template reads: paragraphs apart by a blank line, each paragraph's lines joined by a space.
TEXT = {
    "title": "Study G on {dataset}: which latent space is best?",
    "question": """
        Trained on the same images with the same encoder and the same number of optimizer
        steps, which method gives the latent space that separates classes best — and at what
        cost? Autoencoder, VAE, masked autoencoder, seven self-supervised methods, and a
        supervised classifier as the upper reference.
    """,
    "source": """
        replab's own comparison (no reference report); context figures from solo-learn and
        lightly in the last section
    """,
    "table.heading": "Methods × measures",
    "table": """
        Mean ± standard deviation over {seeds} seed(s). ★ marks the best method without labels
        in each column (SUP, which trains on the labels, and the raw pixels are references, not
        contenders); the last row says whether the ★ method's lead over the next one, paired
        seed by seed, exceeds the standard deviation of the per-seed differences.

        Protocol: one encoder for every method ({encoder}), {epochs} epochs of batch {batch}
        (no early stopping, last weights), Adam 1e-3; probes on the frozen, standardized
        latents (linear: one affine map; MLP: one hidden layer); kNN with k = 20 on cosine
        similarity over a seeded 80/20 split of the test set; silhouette of the labels;
        trustworthiness of the t-SNE map; effective rank = RankMe of the test latents
        ('collapsed' below {collapsed:g}: the latents on about one line). 'train s' is the
        training time on this machine.
    """,
    "answer.heading": "What the numbers say",
    "answer.ranked": "Ranked by linear-probe test accuracy: {order}.",
    "answer.item": "{key} {value:.4f}",
    "support.one_seed": """
        One seed decides nothing: run --seeds 3 or more before reading the ranking as a result.
    """,
    "support": """
        {first}'s lead over {second} (paired seed by seed: {gap:.4f} on average) {verdict} the
        standard deviation of the per-seed differences ({spread:.4f}) over {seeds} seeds, so
        {settled}
    """,
    "support.settled": "the seeds support first place.",
    "support.unsettled": "the seeds do not settle it.",
    "answer.knn": "kNN-20 puts {key} first ({knn:.4f}), {agreement}",
    "answer.knn_agrees": "agreeing with the probe.",
    "answer.knn_differs": "not the probe's winner.",
    "floor": "The raw pixels' linear probe reaches {floor:.4f}; {verdict}",
    "floor.below": "{keys} do not beat it.",
    "floor.above": "every method's latents beat it.",
    "ceiling": "The supervised encoder reaches {accuracy:.4f}: {verdict}",
    "ceiling.labels": "labels are worth {gap:.4f} over the best label-free method.",
    "ceiling.matched": "{key} matches it without labels.",
    "answer.collapsed": "Collapsed (effective rank under {rank:g}): {keys}.",
    "answer.no_collapse": "No method collapsed: every effective rank is {rank:g} or more.",
    "answer.cost": """
        Cost on this machine: {cheap} trained fastest ({cheap_s:.0f} s per seed), {dear}
        slowest ({dear_s:.0f} s); see the accuracy-against-time chart.
    """,
    "budget.heading": "By label budget",
    "budget": """
        The linear (logistic) probe on k labelled train rows per class, scored on the whole
        test split: mean ± std over the seeds and their {draws} seeded, stratified draws of
        labels (every method of a seed, and the pixels, on the same rows); the area is the
        curve's mean over a log axis of k; 'all labels' is the full-label linear probe above.
        Study G's headline measure reads one point of these curves: the ranking can change
        with the label budget.
    """,
    "charts.heading": "Charts",
    "charts": """
        Every measure with its seeds' standard deviation as error bars, and the linear probe
        against training time (each method's cost on this machine).
    """,
    "maps.heading": "Latent spaces side by side (t-SNE)",
    "maps": "One stratified test sample, mapped by t-SNE from each method's latents (seed 0).",
    "published.heading": "Published elsewhere, for context only",
    "published": """
        Not replab's measurements and not comparable with the table above: ResNet-18 on the
        full CIFAR-10 for 1000 epochs on a GPU with each method's tuned recipe (solo-learn's
        README, online linear probe) and for 800 epochs at batch 512 (lightly's CIFAR-10
        benchmark, kNN with k = 200, updated 2023-03-27). They show how close the methods end
        up when each is trained to convergence; this study asks what each gives under one small,
        equal budget.
    """,
}
