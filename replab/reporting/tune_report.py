"""The report of a hyperparameter search: trial table, best parameters and three figures.

Works on plain data (one dict per trial: number, state, value, params, curve, ...), so it
knows nothing of Optuna or of how the trials were run.
"""

from __future__ import annotations

import json
from pathlib import Path

from replab.io import atomic_write_text
from replab.reporting.figures import plain, plt, to_png
from replab.reporting.html import ENV, data_uri, fmt

HISTORY = "optimization history"
IMPORTANCES = "parameter importances"
CURVES = "validation loss per trial"


def tune_figures(
    rows: list[dict],
    metric: str,
    epoch_key: str,
    direction: str,
    importances: dict[str, float] | None,
    best: int | None,
) -> dict[str, bytes]:
    figs = {}
    if any(r["value"] is not None for r in rows):
        figs[HISTORY] = history_figure(rows, metric, direction, best)
    if importances:
        figs[IMPORTANCES] = importance_figure(importances)
    if any(r["curve"] for r in rows):
        figs[CURVES if epoch_key == "val_loss" else f"{epoch_key} per trial"] = curves_figure(
            rows, epoch_key, best
        )
    return figs


def history_figure(rows: list[dict], metric: str, direction: str, best: int | None) -> bytes:
    """Each finished trial's value against its number, pruned ones hollow, and the best so far."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
    pruned = [r for r in rows if r["state"] == "pruned" and r["value"] is not None]
    ax.plot(
        [r["number"] for r in done],
        [r["value"] for r in done],
        "o",
        color="tab:blue",
        label="complete",
    )
    if pruned:
        ax.plot(
            [r["number"] for r in pruned],
            [r["value"] for r in pruned],
            "x",
            color="grey",
            label="pruned (last epoch reported)",
        )
    running, xs, ys = None, [], []
    for r in done:
        if running is None or (
            r["value"] < running if direction == "minimize" else r["value"] > running
        ):
            running = r["value"]
        xs.append(r["number"])
        ys.append(running)
    if xs:
        ax.step(xs, ys, where="post", color="tab:orange", label="best so far")
    chosen = next((r for r in done if r["number"] == best), None)
    if chosen is not None:
        ax.plot(
            [chosen["number"]],
            [chosen["value"]],
            "o",
            color="red",
            markersize=9,
            label=f"best: trial {best}",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(plain(metric))
    _log_if_wide(ax, [r["value"] for r in done + pruned])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def importance_figure(importances: dict[str, float]) -> bytes:
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6.2, 0.45 * len(items) + 1.2))
    # the searched parameters' names come from the user's search space: drawn as text
    ax.barh([plain(k) for k, _ in items], [v for _, v in items], color="tab:blue")
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel("importance (Optuna's get_param_importances, sums to 1)")
    ax.set_xlim(0, max(1.0, max(v for _, v in items) * 1.15))
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return to_png(fig)


def curves_figure(rows: list[dict], epoch_key: str, best: int | None) -> bytes:
    """Report 003's figure: every trial's validation metric over epochs; pruned ones dashed and
    ended with a cross, the best trial in red."""
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    values: list[float] = []
    for r in rows:
        if not r["curve"]:
            continue
        epochs, ys = zip(*r["curve"], strict=True)
        values += ys
        if r["number"] == best:
            continue
        if r["state"] == "pruned":
            ax.plot(epochs, ys, "--", color="grey", lw=0.9, alpha=0.8)
            ax.plot(epochs[-1:], ys[-1:], "x", color="grey")
        else:
            ax.plot(epochs, ys, "-", lw=1.0, alpha=0.8)
    chosen = next((r for r in rows if r["number"] == best and r["curve"]), None)
    if chosen is not None:
        epochs, ys = zip(*chosen["curve"], strict=True)
        ax.plot(epochs, ys, "-o", color="red", lw=2, markersize=3, label=f"best: trial {best}")
    ax.plot([], [], "--x", color="grey", label="pruned")
    ax.set_xlabel("epoch")
    ax.set_ylabel(plain(epoch_key))
    _log_if_wide(ax, values)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def _log_if_wide(ax, values: list[float]) -> None:
    positive = [v for v in values if v is not None and v > 0]
    if positive and len(positive) == len(values) and max(positive) / min(positive) >= 30:
        ax.set_yscale("log")


def _cell(value) -> str:
    if isinstance(value, float):
        return fmt(value)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def table(rows: list[dict], metric: str) -> tuple[list[str], list[list[str]]]:
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    header = ["trial", "state", metric, *keys, "epochs", "seconds", "note"]
    body = [
        [
            str(r["number"]),
            r["state"],
            fmt(r["value"]),
            *(_cell(r["params"][k]) if k in r["params"] else "" for k in keys),
            str(len(r["curve"])),
            fmt(r["seconds"]),
            r["note"],
        ]
        for r in rows
    ]
    return header, body


def render_tune_markdown(
    info: dict, rows: list[dict], best: dict | None, importances: dict | None
) -> str:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [
        f"# Hyperparameter search: {info['name']}",
        "",
        f"Study `{info['study_name']}`: "
        f"{info['trials']} trials, {info['direction']} `{info['metric']}`; "
        f"sampler {info['sampler']}, pruner {info['pruner']}; storage `{info['storage']}`.",
        "",
        f"Recipe `{info['recipe']}`"
        + (f" with `{' '.join(info['overrides'])}`" if info["overrides"] else "")
        + ".",
        "",
        "## Search space",
        "",
    ]
    lines += [f"- `{k}`: {v}" for k, v in info["space"].items()]
    lines += ["", "## Best trial", ""]
    if best is None:
        lines.append("No trial has completed yet.")
    else:
        lines += [
            f"Trial {best['number']}: "
            f"{info['metric']} = {best['value']:.6g}; recipe `{best['yaml']}` "
            f"(train it with `replab run {best['yaml']}`).",
            "",
        ]
        lines += ["| parameter | value |", "|---|---|"] + [
            f"| {cell(k)} | {cell(_cell(v))} |" for k, v in best["params"].items()
        ]
    if importances:
        lines += ["", "## Parameter importances", "", "| parameter | importance |", "|---|---|"]
        lines += [f"| {cell(k)} | {v:.3f} |" for k, v in importances.items()]
    elif info.get("importance_note"):
        lines += ["", f"_{info['importance_note']}._"]
    header, body = table(rows, info["metric"])
    lines += [
        "",
        "## Trials",
        "",
        "| " + " | ".join(map(cell, header)) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in body]
    return "\n".join(lines) + "\n"


def render_tune_html(
    info: dict,
    rows: list[dict],
    best: dict | None,
    importances: dict | None,
    figs: dict[str, bytes],
) -> str:
    header, body = table(rows, info["metric"])
    best_rows = [(k, _cell(v)) for k, v in best["params"].items()] if best else []
    return ENV.get_template("tune.html.j2").render(
        info=info,
        header=header,
        rows=body,
        best=best,
        best_rows=best_rows,
        importances=[(k, f"{v:.3f}") for k, v in (importances or {}).items()],
        figures=[{"name": n, "src": data_uri(png)} for n, png in figs.items()],
        fmt=fmt,
    )


def write_tune_report(
    folder: Path,
    info: dict,
    rows: list[dict],
    best: dict | None,
    importances: dict | None,
    figs: dict[str, bytes],
) -> tuple[Path, Path]:
    md, html = Path(folder) / "tune.md", Path(folder) / "tune.html"
    atomic_write_text(md, render_tune_markdown(info, rows, best, importances))
    atomic_write_text(html, render_tune_html(info, rows, best, importances, figs))
    return md, html
