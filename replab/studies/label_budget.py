"""A study's answer by label budget: every method's label-efficiency curve over its seeds and
draws, which method leads at which number of labels per class, and whether the lead holds
when compared paired.

Each run records its curves per draw (summary.json's ``label_efficiency``). Runs of one seed
draw the same labelled rows, so method A's accuracy at (seed s, draw d) and method B's form
a pair: the difference of the two is free of the draw's luck. A lead is reported with its
mean paired difference, the standard deviation of the differences and how many pairs it wins;
it is called settled only when the mean difference exceeds that standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from replab.evaluation.label_efficiency import Curve, area, paired_lead
from replab.reporting.figures import plt, to_png
from replab.reporting.study_report import Section
from replab.studies.framework import Part
from replab.studies.prose import fill


@dataclass
class Budget(Curve):
    """One method's curve (linear or kNN) over its seeds' draws: ``draws[k]`` holds one value
    per (seed, draw), in seed order; ``full_runs`` the full-label probe of each seed."""

    key: str = ""
    full_runs: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    aucs: list[float] = field(default_factory=list)  # one per (seed, draw)
    baseline: bool = False  # the raw pixels
    labels: bool = False  # trained on the labels: a reference, not a contender

    @property
    def draws_per_seed(self) -> int:
        return len(self.draws[self.shots[0]]) // max(len(self.seeds), 1)


def budget_of(
    key: str,
    part: Part,
    space: str = "linear",
    pixels: bool = False,
    labels: bool = False,
) -> Budget | None:
    """The curve of ``part``'s runs (the pixels' curve, recorded beside its runs, with
    ``pixels``); None when its runs drew none."""
    prefix = "image." if pixels else ""
    draws: dict[int, list[float]] = {}
    full: list[float] = []
    seeds: list[int] = []
    aucs: list[float] = []
    for summary in part.summaries:
        curves = summary.get("label_efficiency") or {}
        per_k = curves.get(prefix + space)
        if not per_k:
            continue
        seeds.append(summary.get("seed", len(seeds)))
        shots = sorted(int(k) for k in per_k)
        for k in shots:
            draws.setdefault(k, []).extend(per_k[str(k)])
        for d in range(len(per_k[str(shots[0])])):
            aucs.append(area(shots, [per_k[str(k)][d] for k in shots]))
        if curves.get(f"{prefix}{space}.full") is not None:
            full.append(curves[f"{prefix}{space}.full"])
    if not draws:
        return None
    return Budget(
        draws,
        key=key,
        full_runs=full,
        seeds=seeds,
        aucs=aucs,
        baseline=pixels,
        labels=labels,
    )


def contenders(budgets: list[Budget]) -> list[Budget]:
    """The curves that compete for a budget: every method trained without labels, and the
    pixels (an encoder that loses to them at some budget should be told so)."""
    return [b for b in budgets if not b.labels]


def leader_at(budgets: list[Budget], k: int) -> tuple[Budget, Budget | None]:
    ranked = sorted((b for b in budgets if k in b.draws), key=lambda b: b.mean(k), reverse=True)
    return ranked[0], (ranked[1] if len(ranked) > 1 else None)


def lead_text(first: Budget, second: Budget | None, k: int, text: dict) -> str:
    """One sentence: who leads at k labels per class, by how much, and whether the paired
    differences support it."""
    if second is None:
        return fill(text["budget.alone"], key=first.key, k=k, value=first.mean(k))
    if first.seeds != second.seeds:  # recorded apart: no pairs to compare
        return fill(
            text["budget.unpaired"],
            key=first.key,
            other=second.key,
            k=k,
            value=first.mean(k),
            gap=first.mean(k) - second.mean(k),
        )
    mean, std, wins, n = paired_lead(first.draws[k], second.draws[k])
    return fill(
        text["budget.lead"],
        key=first.key,
        other=second.key,
        k=k,
        value=first.mean(k),
        gap=mean,
        spread=std,
        wins=wins,
        pairs=n,
        seeds=len(first.seeds),
        verdict=fill(text["budget.settled" if mean > std else "budget.unsettled"]),
    )


def by_budget(budgets: list[Budget], text: dict) -> list[str]:
    """Which contender leads over which range of labels per class (runs of one leader joined),
    then one sentence per budget with its paired comparison."""
    pool = contenders(budgets)
    if not pool:
        return []
    shots = sorted(set.intersection(*(set(b.shots) for b in pool)))
    leaders = [(k, *leader_at(pool, k)) for k in shots]
    spans: list[tuple[str, list[int]]] = []
    for k, first, _ in leaders:
        if spans and spans[-1][0] == first.key:
            spans[-1][1].append(k)
        else:
            spans.append((first.key, [k]))
    parts = [
        fill(text["budget.span"], key=key, low=ks[0], high=ks[-1])
        if len(ks) > 1
        else fill(text["budget.one"], key=key, k=ks[0])
        for key, ks in spans
    ]
    out = [fill(text["budget.summary"], spans="; ".join(parts))]
    out += [lead_text(first, second, k, text) for k, first, second in leaders]
    if len(pool[0].seeds) < 2:
        out.append(fill(text["budget.one_seed"]))
    return out


def budget_rows(budgets: list[Budget], shown: tuple[int, ...]) -> tuple[list, list]:
    """A table: each curve's accuracy at the ``shown`` budgets, its area and its full-label
    probe, mean ± std over seeds and draws."""
    header = ["method", *(f"{k} / class" for k in shown), "area (log k)", "all labels"]
    body = []
    for b in budgets:
        cells = [_cell(b.draws[k]) if k in b.draws else "—" for k in shown]
        body.append([b.key, *cells, _cell(b.aucs), _cell(b.full_runs) if b.full_runs else "—"])
    return header, body


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def budget_section(
    budgets: list[Budget],
    heading: str,
    intro: list[str],
    figure: str,
    shown: tuple[int, ...] | None = None,
) -> Section:
    """A study's label-budget section: ``intro``, the table of every curve at the ``shown``
    budgets that were measured (all of them by default) and every curve in one chart."""
    if not budgets:
        return Section(heading, [fill(TEXT["budget.none"])])
    measured = sorted(set().union(*(b.draws for b in budgets)))
    shown = tuple(k for k in (shown or measured) if k in measured)
    chart = budget_chart(budgets, "linear probe on k labelled train rows per class")
    return Section(heading, intro, table=budget_rows(budgets, shown), figures={figure: chart})


def budget_chart(budgets: list[Budget], title: str) -> bytes:
    """Every curve: mean over seeds and draws, ± std as a band, log axis; the pixels dashed
    in black; a method trained on the labels dotted."""
    fig, ax = plt.subplots(figsize=(8.5, 5))
    for i, b in enumerate(budgets):
        shots = b.shots
        mean = np.array([b.mean(k) for k in shots])
        std = np.array([b.std(k) for k in shots])
        colour = "black" if b.baseline else plt.get_cmap("tab20")(i % 20)
        style = "--" if b.baseline else (":" if b.labels else "-")
        ax.plot(shots, mean, style, color=colour, marker="o", ms=3, label=b.key, lw=1.4)
        ax.fill_between(shots, mean - std, mean + std, color=colour, alpha=0.1, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("labels per class (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return to_png(fig)


TEXT = {
    "budget.summary": "By label budget, the best latent space (or the raw pixels): {spans}.",
    "budget.span": "{key} from {low} to {high} labels per class",
    "budget.one": "{key} at {k}",
    "budget.alone": "At {k} labels per class only {key} was measured ({value:.3f}).",
    "budget.unpaired": """
        At {k} labels per class {key} leads {other} by {gap:.3f} ({value:.3f}); their runs used
        other seeds, so no paired comparison.
    """,
    "budget.lead": """
        At {k}: {key} {value:.3f}, ahead of {other} by {gap:.3f} on average over {pairs}
        paired draws ({seeds} seed(s) × draws; {key} wins {wins}), differences' std {spread:.3f}:
        {verdict}
    """,
    "budget.settled": "the lead exceeds the spread.",
    "budget.unsettled": "within the spread, not settled.",
    "budget.none": "No run drew label-efficiency curves (probe.shots was empty).",
    "budget.one_seed": """
        One training seed: the pairs cover the draws of labels, not the encoders' own seed
        variance; run --seeds 3 before reading a lead as a result.
    """,
}
