"""Study B (report 001, problems 1-2): bottleneck size, PCA, dropout and transfer on MNIST.

B1 sweeps the bottleneck k of a 784-1000-k-1000-784 autoencoder; B2 puts PCA's
reconstruction error and explained variance on the same k axis; B3 crosses k with dropout;
B4 trains softmax(A F(x) + b) with the B1 encoder F random or pretrained, frozen or trained.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np

from replab.data import ImageSet, load_splits
from replab.errors import ConfigError
from replab.evaluation.latent import pca, pca_reconstruction_mse
from replab.reporting.figures import plt, to_png
from replab.reporting.study_report import Section, StudyReport, format_mean_std
from replab.runs import rundir
from replab.search.sweep import Axis
from replab.studies.framework import (
    STUDIES,
    Part,
    StudyRun,
    Sweep,
    reference_row,
    reference_rows,
    run_figure,
)
from replab.studies.prose import fill, paragraphs
from replab.studies.summaries import loss_curves, settings_of, timings_of

K = "model.encoder.latent_dim"
DROPOUT = Axis(["model.encoder.dropout", "model.decoder.dropout"], [0.0, 0.1, 0.3])
QUICK = ["data.limit_train=5000", "trainer.epochs=2"]
QUICK_KS = [2, 32, 300]
# Report 001 table 1 (dropout) and table 2 (transfer).
DROPOUT_REFERENCE = {
    (300, 0.0): (0.00151, 0.00146),
    (300, 0.1): (0.00622, 0.00421),
    (300, 0.3): (0.01174, 0.00760),
    (500, 0.1): (0.00622, 0.00418),
    (500, 0.3): (0.01194, 0.00785),
}
# (key, encoder, trainable, pretrained, frozen, reference train loss, reference test loss)
CASES = [
    ("B4.1", "random", "encoder + classifier", False, False, 0.0178, 0.1180),
    ("B4.2", "pretrained", "classifier only", True, True, 0.2892, 0.2806),
    ("B4.3", "random", "classifier only", False, True, 0.4140, 0.3793),
    ("B4.4", "pretrained", "encoder + classifier", True, False, 0.2893, 0.2805),
]
PCA_REFERENCE = {0.95: 150, 0.99: 330}


@STUDIES.register("b")
class StudyB:
    """Bottleneck sweep, PCA, dropout and transfer on MNIST (report 001, problems 1-2)."""

    def __init__(
        self,
        ks: Sequence[int] = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 700),
        transfer_k: int = 300,
        dropout_ks: Sequence[int] = (300, 500),
    ) -> None:
        if any(k < 1 or k > 784 for k in ks) or not ks:
            raise ConfigError(
                f"study b: ks={list(ks)} must be between 1 and 784", "e.g. --set ks=[2,32,300]"
            )
        self.ks, self.transfer_k, self.dropout_ks = sorted(set(ks)), transfer_k, list(dropout_ks)

    def run(self, s: StudyRun) -> StudyReport:
        ks = QUICK_KS if s.quick else self.ks
        transfer_k = (
            self.transfer_k
            if self.transfer_k in ks
            else min(ks, key=lambda k: abs(k - self.transfer_k))
        )
        b1 = s.sweep(
            "B1",
            "bottleneck sweep: train and test MSE against k",
            "b1-mnist-bottleneck",
            [Axis([K], ks)],
            quick=QUICK,
        )
        pcs = self._pca(s)
        b3 = s.sweep(
            "B3",
            "dropout p in encoder and decoder, crossed with k",
            "b1-mnist-bottleneck",
            [
                Axis([K], [transfer_k] if s.quick else self.dropout_ks),
                Axis(DROPOUT.keys, [0.0, 0.3] if s.quick else DROPOUT.values),
            ],
            quick=QUICK,
        )
        # per seed
        encoder_run = {
            r["values"]["seed"]: b1.folder / r["run"]
            for r in b1.records
            if r["values"][K] == transfer_k
        }

        def pretrained(seed: int) -> list[str]:
            return [f"model.pretrained.path={json.dumps(str(encoder_run[seed]))}"]

        cases = [
            s.part(
                key,
                f"{enc} encoder, {trainable} trained",
                "b4-mnist-transfer",
                [
                    f"model.encoder.latent_dim={transfer_k}",
                    *(["model.freeze=[encoder]"] if frozen else []),
                ],
                quick=QUICK,
                per_seed=pretrained if pre else None,
            )
            for key, enc, trainable, pre, frozen, _, _ in CASES
        ]
        for part, case in zip(cases, CASES, strict=True):
            part.reference = {"train.loss": case[5], "test.loss": case[6]}
        reference = [
            *self._sweep_reference(b1, b3, transfer_k),
            *pcs["rows"],
            *reference_rows(cases),
        ]
        return StudyReport(
            title=fill(TEXT["title"]),
            question=fill(TEXT["question"]),
            settings=settings_of(s, [*cases, b1]),
            reference=reference,
            timings=[
                *timings_of([b1, b3]),
                ("B2", "PCA of the training images", pcs["seconds"]),
                *timings_of(cases),
            ],
            sections=[
                self._bottleneck(b1, pcs),
                self._dropout(b3),
                self._transfer(cases, transfer_k),
            ],
            source=fill(TEXT["source"]),
        )

    # --- B2 -------------------------------------------------------------------------------
    def _pca(self, s: StudyRun) -> dict:
        start = time.perf_counter()
        raw = s.config("b1-mnist-bottleneck", [], QUICK)
        d = raw["data"]
        splits = load_splits(
            d["dataset"],
            root=d.get("root"),
            val_fraction=d.get("val_fraction", 0.1),
            limit_train=d.get("limit_train"),
            seed=s.seeds[0],
        )
        held = splits.train, splits.test
        assert all(isinstance(s, ImageSet) for s in held)  # study B's data is never packed
        train = splits.train.images.flatten(1).float().div(255)  # type: ignore[union-attr]
        result = pca(train)
        test = splits.test.images.flatten(1).float().div(255)  # type: ignore[union-attr]
        mse = pca_reconstruction_mse(result, test)
        rows = [
            reference_row(
                "B2", f"PCA components for {f:.0%} variance", ref, [float(result.components_for(f))]
            )
            for f, ref in PCA_REFERENCE.items()
        ]
        return {
            "result": result,
            "mse": mse,
            "rows": rows,
            "seconds": time.perf_counter() - start,
            "n": len(train),
        }

    # --- B1 and B3 ------------------------------------------------------------------------
    def _sweep_reference(self, b1: Sweep, b3: Sweep, k: int) -> list[dict]:
        rows = []
        point = b1.point(latent_dim=k)
        if point:
            rows += [
                reference_row(
                    "B1",
                    f"{m} at k={k}",
                    b1.reference.get(m) if k == 300 else None,
                    point.metrics.get(m, []),
                )
                for m in ("train.loss", "test.loss")
            ]
        for p in b3.points:
            kp = (p.values[K], p.values[DROPOUT.key])
            ref = DROPOUT_REFERENCE.get(kp, (None, None))
            for m, r in zip(("train.loss", "test.loss"), ref, strict=True):
                rows.append(
                    reference_row("B3", f"{m} k={kp[0]} p={kp[1]}", r, p.metrics.get(m, []))
                )
        return rows

    def _bottleneck(self, b1: Sweep, pcs: dict) -> Section:
        ks = [p.values[K] for p in b1.points]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
        for metric, style, label in (
            ("train.loss", "o-", "autoencoder, train"),
            ("test.loss", "s-", "autoencoder, test"),
        ):
            left.errorbar(
                ks,
                [p.mean(metric) for p in b1.points],
                yerr=[p.std(metric) for p in b1.points],
                fmt=style,
                capsize=3,
                label=label,
            )
        kk = np.arange(1, len(pcs["mse"]) + 1)
        left.plot(kk, pcs["mse"], "-", color="grey", label="PCA with k components, test")
        lowest = min(
            loss for p in b1.points for m in ("train.loss", "test.loss") if (loss := p.mean(m))
        )
        # PCA's error falls to ~0 at all 784 components; clip there so the
        # autoencoder's curve stays readable
        left.set(
            xscale="log",
            yscale="log",
            xlabel="bottleneck k / PCA components",
            ylabel="reconstruction MSE per pixel",
            ylim=(lowest / 10, None),
        )
        left.legend(fontsize=8)
        result = pcs["result"]
        right.plot(kk, result.cumulative, color="grey")
        for fraction, ls in ((0.95, "--"), (0.99, ":")):
            c = result.components_for(fraction)
            right.axvline(c, ls=ls, color="k", lw=0.8)
            right.annotate(
                f"{fraction:.0%}: {c}",
                (c, fraction),
                xytext=(4, -14),
                textcoords="offset points",
                fontsize=8,
            )
        right.set(
            xscale="log",
            xlabel="bottleneck k / PCA components",
            ylabel="cumulative explained variance",
            ylim=(0, 1.01),
        )
        for ax in (left, right):
            ax.grid(alpha=0.3)
        fig.tight_layout()
        best = min(b1.points, key=lambda p: p.reported_mean("test.loss"))
        rows = [
            [
                str(p.values[K]),
                format_mean_std(p.mean("train.loss"), p.std("train.loss") or None, 5),
                format_mean_std(p.mean("test.loss"), p.std("test.loss") or None, 5),
                f"{pcs['mse'][min(p.values[K], len(pcs['mse'])) - 1]:.5f}",
            ]
            for p in b1.points
        ]
        c95, c99 = result.components_for(0.95), result.components_for(0.99)
        seeds = len(b1.points[0].metrics.get("test.loss", []))
        text = paragraphs(
            TEXT["bottleneck"],
            seeds=seeds,
            plural="s" * (seeds > 1),
            k=best.values[K],
            mse=best.mean("test.loss"),
            n=pcs["n"],
            c95=c95,
            c99=c99,
        )
        return Section(
            fill(TEXT["bottleneck.heading"]),
            text,
            table=(["k", "AE train MSE", "AE test MSE", "PCA test MSE"], rows),
            figures={"reconstruction error and explained variance against k": to_png(fig)},
        )

    def _dropout(self, b3: Sweep) -> Section:
        rows = []
        for p in b3.points:
            kp = (p.values[K], p.values[DROPOUT.key])
            ref = DROPOUT_REFERENCE.get(kp)
            rows.append(
                [
                    str(kp[0]),
                    str(kp[1]),
                    format_mean_std(p.mean("train.loss"), None, 5),
                    format_mean_std(p.mean("test.loss"), None, 5),
                    f"{ref[0]:.5f}" if ref else "—",
                    f"{ref[1]:.5f}" if ref else "—",
                ]
            )
        worst = max(b3.points, key=lambda p: p.reported_mean("test.loss"))
        plain = [p for p in b3.points if p.values[DROPOUT.key] == 0.0]
        text = paragraphs(TEXT["dropout"])
        if plain:
            plain_mse = min(p.reported_mean("test.loss") for p in plain)
            verdict = "hurts" if worst.reported_mean("test.loss") > plain_mse else "does not hurt"
            text.append(
                fill(
                    TEXT["dropout.verdict"],
                    plain=plain_mse,
                    k=worst.values[K],
                    p=worst.values[DROPOUT.key],
                    worst=worst.mean("test.loss"),
                    verdict=verdict,
                )
            )
        curve = _run_curve(b3, {K: 300, DROPOUT.key: 0.1})
        return Section(
            fill(TEXT["dropout.heading"]),
            text,
            table=(["k", "p", "train MSE", "test MSE", "reference train", "reference test"], rows),
            figures={"k=300, p=0.1: loss per epoch": curve} if curve else {},
        )

    def _transfer(self, cases: list[Part], k: int) -> Section:
        rows = []
        for part, (key, enc, trainable, *_, ref_train, ref_test) in zip(cases, CASES, strict=True):
            rows.append(
                [
                    key,
                    enc,
                    trainable,
                    format_mean_std(part.mean("train.loss"), None),
                    format_mean_std(part.mean("test.loss"), None),
                    format_mean_std(part.mean("test.accuracy"), None),
                    f"{ref_train:.4f}",
                    f"{ref_test:.4f}",
                ]
            )
        curves = loss_curves(
            [(p.key, p.run_dirs[0]) for p in cases], "cross-entropy", log_scale=True
        )
        best = min(cases, key=lambda p: p.reported_mean("test.loss"))
        text = paragraphs(
            TEXT["transfer"], k=k, best=best.key, title=best.title, loss=best.mean("test.loss")
        )
        return Section(
            fill(TEXT["transfer.heading"]),
            text,
            table=(
                [
                    "case",
                    "encoder",
                    "trained",
                    "train loss",
                    "test loss",
                    "test accuracy",
                    "reference train",
                    "reference test",
                ],
                rows,
            ),
            figures={"training (solid) and validation (dashed) loss of the four cases": curves},
        )


def _run_curve(sweep: Sweep, values: dict) -> bytes | None:
    for r in sweep.records:
        if all(r["values"].get(k) == v for k, v in values.items()):
            run = sweep.folder / r["run"]
            return run_figure(run, rundir.read_summary(run), "training curves")
    return None


# --- The report's text ----------------------------------------------------------------------------
# Filled by the methods above (placeholders in braces); replab/studies/prose.py says how a
# template reads: paragraphs apart by a blank line, each paragraph's lines joined by a space.
TEXT = {
    "title": "Study B on MNIST: bottleneck, PCA, dropout and transfer",
    "question": """
        How small can an autoencoder's bottleneck be, how does it compare with PCA, does dropout
        help it, and does its encoder transfer to classification?
    """,
    "source": "report 001, problems 1-2, study B",
    "bottleneck.heading": "B1-B2: bottleneck size against PCA",
    "bottleneck": """
        Each k trains the autoencoder from scratch ({seeds} seed{plural} per k). The lowest test
        MSE is at k={k} ({mse:.5f}). PCA (fitted on {n:,} training images) needs {c95}
        components for 95% of the pixel variance and {c99} for 99% (report: about 150 and 330).
        Both panels share the k axis: the left one compares the autoencoder's error with PCA's
        at the same number of dimensions.
    """,
    "dropout.heading": "B3: dropout",
    "dropout": """
        Dropout sits after each hidden layer's activation in the encoder and the decoder. The
        train loss is the mean over the last epoch with dropout active; the test loss is
        measured without it.
    """,
    "dropout.verdict": """
        Without dropout the test MSE is {plain:.5f}; the worst setting (k={k}, p={p}) reaches
        {worst:.5f}: dropout {verdict} this autoencoder, as the report found.
    """,
    "transfer.heading": "B4: transfer of the encoder to classification",
    "transfer": """
        Classify(x) = softmax(A F(x) + b) with F the B1 encoder (784-1000-{k}); pretrained F is
        the B1 run at k={k}. Lowest test loss: {best} ({title}, {loss:.4f}); the report's best
        was case 1 (0.1180).

        Cases 2 and 4 of the report are nearly identical (0.2806 / 0.2805); a fine-tuned
        pretrained encoder is usually clearly better than a frozen one, so compare replab's B4.2
        and B4.4.
    """,
}
