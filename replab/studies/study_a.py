"""Study A (report 000): three ways to learn a latent space, and which one separates classes.

A1 trains an autoencoder and probes its frozen latents; A2 trains the same encoder jointly
with the classifier; A3 trains it contrastively (SimCLR) and probes it frozen. The report
answers the study's question from the measured separability of the three latent spaces.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from replab.evaluation.separability import Separability
from replab.reporting.latent_figures import tsne_maps
from replab.reporting.study_report import Section, StudyReport, format_mean_std
from replab.runs import rundir, schema
from replab.studies.framework import STUDIES, Part, StudyRun, reference_rows
from replab.studies.label_budget import TEXT as BUDGET_TEXT
from replab.studies.label_budget import budget_of, budget_section, by_budget
from replab.studies.prose import fill, paragraphs
from replab.studies.summaries import settings_of, timings_of

RECIPES = {
    "mnist": ("a1-mnist-autoencoder", "a2-mnist-classifier", "a3-mnist-simclr"),
    "cifar10": ("a1-cifar10-autoencoder", "a2-cifar10-classifier", "a3-cifar10-simclr"),
}
# A2 once more with dropout and a cosine schedule, which the report does not describe: at the
# report's own settings A2 stays below the 0.98 study A asks of it (see the recipe).
REGULARISED = {"mnist": "a2-mnist-classifier-regularized"}
# The accuracy each regime is judged by: the frozen-latent probe, or the joint classifier itself.
ACCURACY = {
    "A1": "probe.test_accuracy",
    "A2": "test.accuracy",
    "A2.reg": "test.accuracy",
    "A3": "probe.test_accuracy",
}
TITLES = {
    "A1": "autoencoder, then a classifier on the frozen latents",
    "A2": "encoder trained jointly with the classifier",
    "A2.reg": "A2 with dropout 0.2 and a cosine schedule (not in the report)",
    "A3": "contrastive (SimCLR) encoder, then a classifier on the frozen latents",
}
REGIMES = {
    "A1": "autoencoder",
    "A2": "classification-guided",
    "A2.reg": "classification-guided, regularised",
    "A3": "contrastive",
}

_SMALL_EVAL = ["analysis.tsne_sample=500", "probe.trainer.epochs=30"]
QUICK = {
    "mnist": {
        "A1": ["data.limit_train=6000", "trainer.epochs=5", *_SMALL_EVAL],
        "A2": ["data.limit_train=6000", "trainer.epochs=3", *_SMALL_EVAL],
        "A3": ["data.limit_train=6000", "trainer.epochs=4", "trainer.batch_size=256", *_SMALL_EVAL],
    },
    "cifar10": {
        "A1": ["data.limit_train=2000", "trainer.epochs=2", *_SMALL_EVAL],
        "A2": ["data.limit_train=2000", "trainer.epochs=2", *_SMALL_EVAL],
        "A3": [
            "data.limit_train=1000",
            "trainer.epochs=1",
            "trainer.batch_size=128",
            "model.encoder.width=8",
            *_SMALL_EVAL,
        ],
    },
}


@STUDIES.register("a")
class StudyA:
    """Autoencoder vs classification-guided vs contrastive encoders (report 000)."""

    def __init__(self, dataset: Literal["mnist", "cifar10"] = "mnist") -> None:
        self.dataset = dataset

    def run(self, s: StudyRun) -> StudyReport:
        # The pixels are the same test images for every regime: A1 maps and scores them once.
        parts = [
            s.part(
                key,
                TITLES[key],
                recipe,
                [] if key == "A1" else ["analysis.image_space=false"],
                quick=QUICK[self.dataset][key],
            )
            for key, recipe in zip(("A1", "A2", "A3"), RECIPES[self.dataset], strict=True)
        ]
        a1 = parts[0]
        extra = (
            [
                s.part(
                    "A2.reg",
                    TITLES["A2.reg"],
                    REGULARISED[self.dataset],
                    quick=QUICK[self.dataset]["A2"],
                )
            ]
            if self.dataset in REGULARISED
            else []
        )
        sections = [
            self._accuracy([*parts[:2], *extra, parts[2]]),
            Section(
                fill(TEXT["reconstructions.heading"]),
                paragraphs(TEXT["reconstructions"]),
                figures={
                    k: v
                    for k, v in (
                        ("reconstructions", a1.figure("reconstructions")),
                        ("interpolation", a1.figure("latent interpolation")),
                    )
                    if v
                },
            ),
            self._maps(parts),
            self._answer(parts),
            _budget([*parts[:2], *extra, parts[2]]),
            Section(
                fill(TEXT["curves.heading"]),
                figures={
                    f"{p.key}: {REGIMES[p.key]}": fig
                    for p in parts
                    if (fig := p.figure("training curves"))
                },
                columns=3,
            ),
        ]
        return StudyReport(
            title=fill(TEXT["title"], dataset=self.dataset),
            question=fill(TEXT["question"]),
            settings=settings_of(s, [*parts, *extra]),
            reference=reference_rows([*parts, *extra]),
            timings=timings_of([*parts, *extra]),
            sections=sections,
            source=fill(TEXT["source"]),
        )

    def _accuracy(self, parts: list[Part]) -> Section:
        header = [
            "part",
            "regime",
            "test accuracy",
            "reference",
            "latent kNN accuracy",
            "silhouette",
            "t-SNE trustworthiness",
            "test MAE",
        ]
        rows = []
        for p in parts:
            acc = ACCURACY[p.key]
            rows.append(
                [
                    p.key,
                    REGIMES[p.key],
                    format_mean_std(p.mean(acc), p.std(acc) if len(p.summaries) > 1 else None),
                    f"{p.reference[acc]:.4f}" if acc in p.reference else "—",
                    *(
                        format_mean_std(p.mean(m), None, 3)
                        for m in (
                            "latent.knn_accuracy",
                            "latent.silhouette",
                            "latent.tsne_trustworthiness",
                        )
                    ),
                    format_mean_std(p.mean("test.mae"), None)
                    if p.values("test.mae") and p.key == "A1"
                    else "—",
                ]
            )
        image = parts[0]
        rows.append(
            [
                "—",
                "image space (pixels)",
                "—",
                "—",
                *(
                    format_mean_std(image.mean(m), None, 3)
                    for m in (
                        "image.knn_accuracy",
                        "image.silhouette",
                        "image.tsne_trustworthiness",
                    )
                ),
                "—",
            ]
        )
        return Section(
            fill(TEXT["accuracy.heading"]), paragraphs(TEXT["accuracy"]), table=(header, rows)
        )

    def _maps(self, parts: list[Part]) -> Section:
        maps = [_load_maps(p) for p in parts]
        panels = []
        if maps[0]:
            image = next(sp for sp in maps[0]["spaces"] if sp["name"] == "image space")
            panels.append(("image space (pixels)", image))
        for p, m in zip(parts, maps, strict=True):
            if m:
                latent = next(sp for sp in m["spaces"] if sp["name"] == "latent space")
                panels.append((f"{p.key} {REGIMES[p.key]} latents", latent))
        figures = {}
        if panels:
            # the labels of the test sample every map shows (A1's may be missing)
            ref = next(m for m in maps if m)
            figures["t-SNE of the same test sample"] = tsne_maps(
                [
                    (title, np.asarray(sp["points"]), Separability(**sp["scores"]))
                    for title, sp in panels
                ],
                np.asarray(ref["labels"]),
                ref["classes"],
            )
        return Section(fill(TEXT["maps.heading"]), paragraphs(TEXT["maps"]), figures=figures)

    def _answer(self, parts: list[Part]) -> Section:
        def score(p: Part) -> tuple[float, float]:
            return (p.mean("latent.knn_accuracy") or 0.0, p.mean("latent.silhouette") or 0.0)

        ranked = sorted(parts, key=score, reverse=True)
        order = " > ".join(
            fill(TEXT["answer.order"], regime=REGIMES[p.key], key=p.key, scores=score(p))
            for p in ranked
        )
        best = ranked[0]
        by_silhouette = max(parts, key=lambda p: score(p)[1])
        agree = "agrees with" if [p.key for p in ranked] == ["A2", "A3", "A1"] else "differs from"
        knn, silhouette = parts[0].mean("image.knn_accuracy"), parts[0].mean("image.silhouette")
        pixels = (
            " " + fill(TEXT["answer.pixels"], knn=knn, silhouette=silhouette)
            if knn is not None and silhouette is not None
            else ""
        )
        also = (
            fill(TEXT["answer.also"], regime=REGIMES[by_silhouette.key], key=by_silhouette.key)
            if by_silhouette is not best
            else fill(TEXT["answer.too"])
        )
        text = paragraphs(
            TEXT[f"answer.{self.dataset}"],
            order=order,
            agree=agree,
            pixels=pixels,
            regime=REGIMES[best.key],
            key=best.key,
            also=also,
        )
        return Section(fill(TEXT["answer.heading"]), text)


def _budget(parts: list[Part]) -> Section:
    """Each regime's label-efficiency curve (linear probe on k labels per class), the pixels'
    from A1's runs, with the leader at each budget compared paired."""
    found = [budget_of("pixels", parts[0], pixels=True)]
    found += [budget_of(p.key, p, labels=p.key.startswith("A2")) for p in parts]
    budgets = [b for b in found if b is not None]
    return budget_section(
        budgets,
        fill(TEXT["budget.heading"]),
        paragraphs(TEXT["budget"]) + by_budget(budgets, BUDGET_TEXT),
        "test accuracy against labels per class",
    )


def _load_maps(part: Part) -> dict | None:
    path = part.run_dirs[0] / rundir.FIGURES / rundir.TSNE_DATA
    if not path.is_file():
        return None
    return schema.read_checked(
        schema.TsneMaps, path, f"delete {path} and resume the study to draw the maps again"
    )


# --- The report's text ----------------------------------------------------------------------------
# Filled by the functions above (placeholders in braces); replab/studies/prose.py says how a
# template reads: paragraphs apart by a blank line, each paragraph's lines joined by a space.
_ANSWER = """
    replab measures, ranked by latent kNN accuracy: {order}. This {agree} the report's ranking
    (classification-guided first, contrastive second).{pixels}

    Answer: the {regime} regime ({key}) separates the classes best by kNN accuracy{also}
"""
TEXT = {
    "budget.heading": "How many labels each latent space needs",
    "budget": """
        A logistic probe on k labelled train rows per class, scored on the whole test split:
        mean ± std over seeds and five seeded, stratified draws of the labels (each regime and
        the pixels on the same rows). A2 trained on every label, so it is shown as a
        reference and never leads; the area is the curve's mean over a log axis of k.
    """,
    "title": "Study A on {dataset}: three ways to learn a latent space",
    "question": """
        Which way of training an encoder — reconstruction, classification, or contrast between
        augmented views — gives the latent space that separates classes best?
    """,
    "source": "report 000, study A",
    "accuracy.heading": "Accuracy and separability of each regime",
    "accuracy": """
        Test accuracy: A1 and A3 by a classifier on the frozen latents, A2 by the jointly
        trained classifier (A2.reg, where present, adds dropout and a cosine schedule the report
        does not describe). Separability is measured on the test set: kNN accuracy (cosine,
        leave-one-out), silhouette of the class labels, and how faithfully the t-SNE map keeps
        each point's neighbours.
    """,
    "reconstructions.heading": "Reconstructions and latent interpolation (A1)",
    "reconstructions": """
        Test images above, the autoencoder's reconstructions below; then the decoded straight
        line between the latents of two test images.
    """,
    "maps.heading": "Image space vs latent space (t-SNE)",
    "maps": """
        One stratified test sample mapped by t-SNE (openTSNE) from the pixels and from each
        regime's latents, coloured by class; each panel's title gives its separability scores.
    """,
    "answer.heading": "Answer: which regime separates classes best?",
    # the published conclusion for each dataset, then replab's own measurements
    "answer.mnist": """
        The reference report ranks the MNIST latent spaces classification-guided > contrastive >
        autoencoder.
    """
    + _ANSWER,
    "answer.cifar10": """
        The reference report finds the autoencoder's CIFAR-10 latent space unseparated, and the
        contrastive one close to the classification-guided one, which it ranks first.
    """
    + _ANSWER,
    "answer.order": "{regime} ({key}: kNN {scores[0]:.3f}, silhouette {scores[1]:.3f})",
    "answer.pixels": """
        The raw pixels of the same test images score kNN {knn:.3f}, silhouette {silhouette:.3f}.
    """,
    "answer.also": ", and the {regime} regime ({key}) by silhouette.",
    "answer.too": ", and by silhouette too.",
    "curves.heading": "Training curves",
}
