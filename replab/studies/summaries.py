"""What every study report starts with: the settings it ran under and the time per part."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from replab.reporting.figures import plt, to_png
from replab.runs import rundir
from replab.studies.framework import Part, StudyRun, Sweep


def settings_of(s: StudyRun, parts: Sequence[Part | Sweep]) -> dict[str, str]:
    runs = [p for p in parts if isinstance(p, Part)]
    data = list(dict.fromkeys(p.data for p in runs))
    device = runs[0].summaries[0]["device"] if runs else ""
    return {
        "data": " · ".join(data),
        "device": device,
        "profile": "quick (a small, fast check; not the report's settings)"
        if s.quick
        else "full (the report's settings)",
        "seeds": ", ".join(map(str, s.seeds)),
        "overrides": ", ".join(s.user_overrides) or "none (the bundled recipes as they are)",
        "study folder": str(s.folder),
    }


def timings_of(parts: Sequence[Part | Sweep]) -> list[tuple[str, str, float]]:
    return [(p.key, p.title, p.seconds) for p in parts]


def loss_curves(
    runs: list[tuple[str, Path]], ylabel: str, metric: str = "loss", log_scale: bool = False
) -> bytes:
    """Training (solid) and validation (dashed) ``metric`` per epoch of
    several runs, one colour each."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    plot_curves(ax, runs, ylabel, metric, log_scale)
    fig.tight_layout()
    return to_png(fig)


def plot_curves(
    ax, runs: list[tuple[str, Path]], ylabel: str, metric: str = "loss", log_scale: bool = False
) -> None:
    """``loss_curves`` on a given axes, so a figure can hold several metrics side by side."""
    for i, (label, run_dir) in enumerate(runs):
        history = rundir.read_metrics(run_dir)
        epochs = [r["epoch"] for r in history]
        colour = plt.get_cmap("tab10")(i % 10)
        ax.plot(
            epochs,
            [r[f"train_{metric}"] for r in history],
            "-",
            color=colour,
            label=f"{label} train",
        )
        ax.plot(
            epochs,
            [r[f"val_{metric}"] for r in history],
            "--",
            color=colour,
            label=f"{label} validation",
        )
    ax.set(xlabel="epoch", ylabel=ylabel, yscale="log" if log_scale else "linear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)


def subset_note(parts: list[Part]) -> str:
    """Why figures trained on a subset of a dataset sit below the report's (empty when none is)."""
    if not any("subset" in p.data or "limited to" in p.data for p in parts):
        return ""
    return (
        "These runs trained on fewer images than the report "
        "(see the data line at the top), so accuracies sit below the "
        "reference figures and losses above them; "
        "the comparisons that carry over are those between parts of this study."
    )
