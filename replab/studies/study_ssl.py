"""Study ssl: two self-supervised objectives on one protocol — SimCLR's NT-Xent (contrast
with negatives) against Barlow Twins (decorrelation, no negatives).

Both parts train the very same encoder, projection head, augmentations, optimizer and
number of steps (the A3 recipe of the chosen dataset), so the objective is the only
difference; each is judged by a probe on its frozen latents and by the separability of its
latent space. The study was added as one file plus its test (docs/adding.md).
"""

from __future__ import annotations

from typing import Literal

from replab.reporting.study_report import Section, StudyReport, format_mean_std
from replab.studies.framework import STUDIES, Part, StudyRun, reference_rows
from replab.studies.prose import fill, paragraphs
from replab.studies.summaries import loss_curves, settings_of, subset_note, timings_of

RECIPE = {"mnist": "a3-mnist-simclr", "cifar10": "a3-cifar10-simclr"}
TITLES = {
    "S1": "SimCLR: NT-Xent over the batch's negatives",
    "S2": "Barlow Twins: cross-correlation of the views towards the identity",
    "S3": "VICReg: variance, invariance and covariance terms",
}
SMALL_EVAL = ["analysis.tsne_sample=500", "probe.trainer.epochs=30"]
QUICK = {
    "mnist": ["data.limit_train=4000", "trainer.epochs=3", "trainer.batch_size=256", *SMALL_EVAL],
    "cifar10": [
        "data.limit_train=1000",
        "trainer.epochs=1",
        "trainer.batch_size=128",
        "model.encoder.width=8",
        *SMALL_EVAL,
    ],
}
METRICS = (
    "probe.test_accuracy",
    "latent.knn_accuracy",
    "latent.silhouette",
    "latent.tsne_trustworthiness",
)


@STUDIES.register("ssl")
class StudySSL:
    """SimCLR vs Barlow Twins vs VICReg: which self-supervised objective gives the better latent
    space"""

    def __init__(
        self, dataset: Literal["mnist", "cifar10"] = "mnist", lambd: float = 0.0051
    ) -> None:
        self.dataset, self.lambd = dataset, lambd

    def run(self, s: StudyRun) -> StudyReport:
        recipe, quick = RECIPE[self.dataset], QUICK[self.dataset]
        others = {
            "S2": (f"{{name: barlow_twins, lambd: {self.lambd}}}", "barlow-twins"),
            "S3": ("{name: vicreg}", "vicreg"),
        }
        parts = [s.part("S1", TITLES["S1"], recipe, ["analysis.image_space=false"], quick=quick)]
        for key, (objective, label) in others.items():
            changes = [
                "analysis.image_space=false",
                f"objective={objective}",
                "report.reference={}",  # the report's figures are SimCLR's
                f"name={recipe.replace('simclr', label)}",
            ]
            parts.append(s.part(key, TITLES[key], recipe, changes, quick=quick))
        return StudyReport(
            title=fill(TEXT["title"], dataset=self.dataset),
            question=fill(TEXT["question"]),
            settings=settings_of(s, parts),
            reference=reference_rows(parts),
            timings=timings_of(parts),
            sections=[
                self._table(parts),
                self._answer(parts),
                Section(
                    fill(TEXT["curves.heading"]),
                    figures={
                        "loss per epoch": loss_curves(
                            [(p.key, p.run_dirs[0]) for p in parts],
                            "loss (each objective's own scale)",
                        )
                    },
                ),
            ],
            source=fill(TEXT["source"], recipe=recipe),
        )

    def _table(self, parts: list[Part]) -> Section:
        header = ["part", "objective", *METRICS]
        rows = [
            [
                p.key,
                p.title,
                *(
                    format_mean_std(p.mean(m), p.std(m) if len(p.summaries) > 1 else None)
                    for m in METRICS
                ),
            ]
            for p in parts
        ]
        text = paragraphs(TEXT["table"], lambd=self.lambd)
        if note := subset_note(parts):
            text.append(note)
        return Section(fill(TEXT["table.heading"]), text, table=(header, rows))

    def _answer(self, parts: list[Part]) -> Section:
        def score(p: Part) -> float:
            return p.mean("probe.test_accuracy") or 0.0

        ranked = sorted(parts, key=score, reverse=True)
        best, runner_up = ranked[0], ranked[1]
        knn = {p.key: p.mean("latent.knn_accuracy") or 0.0 for p in parts}
        agree = "agrees" if max(knn, key=knn.__getitem__) == best.key else "disagrees"
        order = " > ".join(
            fill(TEXT["answer.order"], key=p.key, name=p.title.split(":")[0], accuracy=score(p))
            for p in ranked
        )
        shown = ", ".join(fill(TEXT["answer.knn"], key=k, knn=v) for k, v in knn.items())
        text = paragraphs(TEXT["answer"], order=order, shown=shown, agree=agree)
        return Section(fill(TEXT["answer.heading"]), [*text, _confidence(best, runner_up)])


def _confidence(best: Part, other: Part) -> str:
    """Whether the seeds say the gap is real: it must exceed both parts' spreads added up."""
    metric = "probe.test_accuracy"
    if len(best.summaries) < 2 or len(other.summaries) < 2:
        return fill(TEXT["confidence.one_seed"])
    gap = (best.mean(metric) or 0.0) - (other.mean(metric) or 0.0)
    spread = best.std(metric) + other.std(metric)
    verdict = "larger" if gap > spread else "not larger"
    return fill(
        TEXT["confidence"],
        seeds=len(best.summaries),
        gap=gap,
        verdict=verdict,
        spread=spread,
        settled=fill(TEXT["confidence.support" if gap > spread else "confidence.unsettled"]),
    )


# --- The report's text ----------------------------------------------------------------------------
# Filled by the functions above (placeholders in braces); replab/studies/prose.py says how a
# template reads: paragraphs apart by a blank line, each paragraph's lines joined by a space.
TEXT = {
    "title": "Study ssl on {dataset}: SimCLR vs Barlow Twins vs VICReg under one budget",
    "question": """
        With the same encoder, augmentations and optimizer steps, does contrast against
        negatives (SimCLR) or a regulariser without negatives (Barlow Twins' decorrelation,
        VICReg's variance and covariance terms) give the latent space that separates classes
        better?
    """,
    "source": "replab's own comparison; the SimCLR part is study A3 ({recipe})",
    "table.heading": "The objectives, one protocol",
    "table": """
        Barlow Twins with lambd = {lambd} (the paper's 0.0051 unless --set lambd=...), VICReg
        with the paper's weights (25, 25, 1). Probe: the recipe's MLP classifier on the frozen
        encoder output; separability on the test set (cosine kNN accuracy, silhouette of the
        labels, t-SNE trustworthiness).
    """,
    "answer.heading": "Answer",
    "answer": """
        Ranked by probe test accuracy: {order}. Latent kNN accuracy ({shown}) {agree} on the
        first place.
    """,
    "answer.order": "{key} {name} {accuracy:.4f}",
    "answer.knn": "{key} {knn:.3f}",
    "confidence.one_seed": """
        One seed decides nothing: run --seeds 3 or more and compare the ± figures before drawing
        a conclusion.
    """,
    "confidence": """
        Over {seeds} seeds the gap ({gap:.4f}) is {verdict} than the two standard deviations
        added up ({spread:.4f}), so {settled}
    """,
    "confidence.support": "the seeds support the ranking.",
    "confidence.unsettled": "the seeds do not settle it.",
    "curves.heading": "Training curves",
}
