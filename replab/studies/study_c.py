"""Study C (report 001, problems 3-6): pretext tasks, block transfer and pair contrast on CIFAR-10.

C1 trains the 3-block CNN classifier; C2 trains the same network on a rotation pretext
(no class labels); C3 starts C1 from the first k blocks of C2, frozen or trainable, as a
sweep; C4 embeds images in 2-D with the pair margin loss and plots them before and after.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from replab.errors import ConfigError
from replab.reporting.figures import plt, to_png
from replab.reporting.latent_figures import PLANE_FIGURE
from replab.reporting.study_report import Section, StudyReport, format_mean_std
from replab.search.sweep import Axis
from replab.studies.framework import STUDIES, Part, StudyRun, Sweep, reference_row, reference_rows
from replab.studies.prose import fill, paragraphs
from replab.studies.summaries import loss_curves, settings_of, subset_note, timings_of

BLOCKS, FREEZE = "model.pretrained.blocks", "model.pretrained.freeze"
QUICK = [
    "data.limit_train=1000",
    "data.limit_eval=500",
    "trainer.epochs=2",
    "trainer.eval_batch_size=1024",
]
QUICK_C4 = [
    "data.limit_train=1000",
    "data.limit_eval=500",
    "trainer.epochs=3",
    "probe.trainer.epochs=20",
]
QUICK_KS = [1, 3]
# Report 001 table 5: k=2 blocks, trainable, the best transfer setting.
C3_REFERENCE = {(2, False): {"train.loss": 0.5927, "test.loss": 0.6650, "test.accuracy": 0.7715}}


@STUDIES.register("c")
class StudyC:
    """Rotation pretext, first-k-blocks transfer and a pair-contrastive 2-D embedding
    (report 001, problems 3-6)."""

    def __init__(self, angles: Sequence[int] = (0, 90), ks: Sequence[int] = (1, 2, 3)) -> None:
        if not ks or any(not isinstance(k, int) or not 1 <= k <= 3 for k in ks):
            raise ConfigError(
                f"study c: ks={list(ks)} must be block counts between 1 and 3",
                "e.g. --set ks=[1,2,3]",
            )
        self.angles, self.ks = list(angles), sorted(set(ks))

    def run(self, s: StudyRun) -> StudyReport:
        c1 = s.part("C1", "3-block CNN classifier", "c1-cifar10-cnn", quick=QUICK)
        c2 = s.part(
            "C2",
            f"rotation pretext ({self._pretext()})",
            "c2-cifar10-rotation",
            [f"task.angles={json.dumps(self.angles)}"],
            quick=QUICK,
        )
        pretext_run = dict(zip(s.seeds, c2.run_dirs, strict=True))
        c3 = s.sweep(
            "C3",
            "first k blocks of the pretext network, frozen or trainable",
            "c1-cifar10-cnn",
            [Axis([BLOCKS], QUICK_KS if s.quick else self.ks), Axis([FREEZE], [False, True])],
            quick=QUICK,
            per_seed=lambda seed: [f"model.pretrained.path={json.dumps(str(pretext_run[seed]))}"],
        )
        c4 = s.part(
            "C4", "pair margin loss into a 2-D embedding", "c4-cifar10-pairs", quick=QUICK_C4
        )
        if self.angles != [0, 90]:
            c2.reference = {}  # the report's figures are for the binary pretext only
        return StudyReport(
            title=fill(TEXT["title"]),
            question=fill(TEXT["question"]),
            settings=settings_of(s, [c1, c2, c4]),
            reference=[*reference_rows([c1, c2]), *self._c3_reference(c3), *reference_rows([c4])],
            timings=timings_of([c1, c2, c3, c4]),
            sections=[self._classifiers(c1, c2), self._transfer(c1, c3), self._pairs(c4)],
            source=fill(TEXT["source"]),
        )

    def _pretext(self) -> str:
        if self.angles == [0, 90]:
            return fill(TEXT["pretext.binary"])
        angles = ", ".join(fill(TEXT["pretext.angle"], angle=a) for a in self.angles)
        return fill(TEXT["pretext.n_way"], n=len(self.angles), angles=angles)

    @staticmethod
    def _c3_reference(c3: Sweep) -> list[dict]:
        rows = []
        for p in c3.points:
            ref = C3_REFERENCE.get((p.values[BLOCKS], p.values[FREEZE]), {})
            label = f"k={p.values[BLOCKS]} {'frozen' if p.values[FREEZE] else 'trainable'}"
            for metric in (
                ("test.accuracy", "train.loss", "test.loss") if ref else ("test.accuracy",)
            ):
                rows.append(
                    reference_row(
                        "C3", f"{metric} {label}", ref.get(metric), p.metrics.get(metric, [])
                    )
                )
        return rows

    # --- C1 and C2 --------------------------------------------------------------------
    def _classifiers(self, c1: Part, c2: Part) -> Section:
        def row(p: Part, task: str) -> list[str]:
            cells = [
                format_mean_std(p.mean(m), p.std(m) or None)
                for m in ("train.loss", "test.loss", "test.accuracy")
            ]
            return [
                p.key,
                task,
                *cells,
                *(
                    f"{p.reference[m]:.4f}" if m in p.reference else "—"
                    for m in ("test.loss", "test.accuracy")
                ),
                format_mean_std(p.mean("probe.test_accuracy"), None)
                if p.values("probe.test_accuracy")
                else "—",
            ]

        rows = [row(c1, "10 classes"), row(c2, self._pretext())]
        probe, supervised = c2.mean("probe.test_accuracy"), c1.mean("test.accuracy")
        text = paragraphs(TEXT["classifiers"])
        if probe is not None and supervised:
            text.append(fill(TEXT["classifiers.probe"], probe=probe, supervised=supervised))
        if note := subset_note([c1, c2]):
            text.append(note)
        curves = loss_curves([("C1", c1.run_dirs[0]), ("C2", c2.run_dirs[0])], "cross-entropy")
        return Section(
            fill(TEXT["classifiers.heading"]),
            text,
            table=(
                [
                    "part",
                    "task",
                    "train loss",
                    "test loss",
                    "test accuracy",
                    "reference test loss",
                    "reference test accuracy",
                    "class probe on frozen features",
                ],
                rows,
            ),
            figures={"training (solid) and validation (dashed) loss of C1 and C2": curves},
        )

    # --- C3 ---------------------------------------------------------------------------
    def _transfer(self, c1: Part, c3: Sweep) -> Section:
        rows = [
            [
                "0 (C1, from scratch)",
                "—",
                *(
                    format_mean_std(c1.mean(m), c1.std(m) or None)
                    for m in ("train.loss", "test.loss", "test.accuracy")
                ),
            ]
        ]
        for p in sorted(c3.points, key=lambda p: (p.values[FREEZE], p.values[BLOCKS])):
            rows.append(
                [
                    str(p.values[BLOCKS]),
                    "frozen" if p.values[FREEZE] else "trainable",
                    *(
                        format_mean_std(p.mean(m), p.std(m) or None)
                        for m in ("train.loss", "test.loss", "test.accuracy")
                    ),
                ]
            )
        best = min(c3.points, key=lambda p: p.reported_mean("test.loss"))
        gain = best.reported_mean("test.accuracy") - c1.reported_mean("test.accuracy")
        text = paragraphs(
            TEXT["transfer"],
            k=best.values[BLOCKS],
            frozen="frozen" if best.values[FREEZE] else "trainable",
            loss=best.mean("test.loss"),
            accuracy=best.mean("test.accuracy"),
            gain=gain,
        )
        return Section(
            fill(TEXT["transfer.heading"]),
            text,
            table=(
                [
                    "blocks from C2",
                    "transferred blocks",
                    "train loss",
                    "test loss",
                    "test accuracy",
                ],
                rows,
            ),
            figures={
                "test loss and accuracy against k (C1 from scratch dotted)": _transfer_figure(
                    c1, c3
                )
            },
        )

    # --- C4 ---------------------------------------------------------------------------
    def _pairs(self, c4: Part) -> Section:
        rows = [
            [
                m,
                format_mean_std(c4.mean(m), c4.std(m) or None),
                f"{c4.reference[m]:.4f}" if m in c4.reference else "—",
            ]
            for m in (
                "train.loss",
                "test.loss",
                "test.pair_accuracy",
                "initial.knn_accuracy",
                "latent.knn_accuracy",
                "probe.test_accuracy",
            )
        ]
        text = paragraphs(TEXT["pairs"])
        figures = {
            k: v
            for k, v in (
                (
                    "test set in the 2-D embedding, before and after training",
                    c4.figure(PLANE_FIGURE),
                ),
                ("loss per epoch", c4.figure("training curves")),
            )
            if v
        }
        return Section(
            fill(TEXT["pairs.heading"]),
            text,
            table=(["metric", "replab", "reference"], rows),
            figures=figures,
        )


def _transfer_figure(c1: Part, c3: Sweep) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("test.loss", "test.accuracy"), strict=True):
        for frozen, style in ((False, "o-"), (True, "s--")):
            points = sorted(
                (p for p in c3.points if p.values[FREEZE] == frozen), key=lambda p: p.values[BLOCKS]
            )
            ax.errorbar(
                [p.values[BLOCKS] for p in points],
                [p.mean(metric) for p in points],
                yerr=[p.std(metric) for p in points],
                fmt=style,
                capsize=3,
                label="frozen" if frozen else "trainable",
            )
        ax.axhline(c1.mean(metric), ls=":", color="grey", label="C1 from scratch")
        ax.set(
            xlabel="blocks transferred from the rotation pretext (k)",
            ylabel=metric,
            xticks=sorted({p.values[BLOCKS] for p in c3.points}),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


# --- The report's text ----------------------------------------------------------------------------
# Filled by the methods above (placeholders in braces); replab/studies/prose.py says how a
# template reads: paragraphs apart by a blank line, each paragraph's lines joined by a space.
TEXT = {
    "title": "Study C on CIFAR-10: pretext tasks, block transfer and pair contrast",
    "question": """
        Does a network pretrained to spot rotations transfer to classification, and how many of
        its blocks should move, frozen or not? And can a pair margin loss alone arrange classes
        in a 2-D embedding?
    """,
    "source": "report 001, problems 3-6, study C",
    "pretext.binary": "rotated by 90° or not",
    "pretext.n_way": "{n}-way: {angles}",
    "pretext.angle": "{angle}°",
    "classifiers.heading": "C1-C2: the classifier and the rotation pretext",
    "classifiers": """
        C2 is the C1 network with a head for the rotation classes; its images carry no class
        labels. Its last column is a linear classifier trained on its frozen 256-d features
        with the class labels: how much of the classes the pretext taught, without being asked.
    """,
    "classifiers.probe": """
        The pretext features give {probe:.3f} class accuracy with a linear head, against
        {supervised:.3f} for the supervised C1.
    """,
    "transfer.heading": "C3: transferring the first k blocks",
    "transfer": """
        Each run is C1's recipe with `model.pretrained: {{path: <C2 run>, blocks: k, freeze:
        ...}}`: the first k conv blocks come from the pretext network of the same seed, the
        later blocks and the fully connected layers start afresh.

        Lowest test loss: k={k}, {frozen} ({loss:.4f}, accuracy {accuracy:.4f}, {gain:+.4f}
        against C1 from scratch). The report found k=2 trainable best (test loss 0.6650,
        accuracy 0.7715 against C1's 0.7556).
    """,
    "pairs.heading": "C4: pair margin loss into two dimensions",
    "pairs": """
        The loss is report 001's: a same-class pair costs its squared distance d², a
        different-class pair max(M − d², 0) with M = 2. Pairs are each batch against a random
        permutation of itself. Pair accuracy counts pairs on the right side of d² = M/2, where
        both kinds of pair cost the same. kNN accuracy (euclidean, k=5) and a small classifier
        on the 2-D points measure how well the classes separate before and after training.

        The train loss is the mean over the last epoch with dropout active; the test loss pairs
        the test set with one fixed permutation.
    """,
}
