"""Figures as PNG bytes (matplotlib, headless), ready to save and embed."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def to_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def curves(history: list[dict], title: str = "") -> bytes:
    """Loss (and accuracy, when recorded) per epoch for train and val."""
    metrics = [m for m in ("loss", "accuracy", "mae") if f"val_{m}" in history[0]]
    # A metric identical to the loss (MAE under an L1 objective) would only repeat the first panel.
    metrics = [
        m for m in metrics if m == "loss" or any(r[f"val_{m}"] != r["val_loss"] for r in history)
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for ax, metric in zip(axes[0], metrics, strict=True):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            if key in history[0]:
                ax.plot(
                    epochs, [r[key] for r in history], style, marker="o", markersize=3, label=split
                )
        best = [r["epoch"] for r in history if r.get("best")]
        if best:
            ax.axvline(best[-1], color="grey", lw=0.8, ls=":", label=f"best (epoch {best[-1]})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return to_png(fig)


def image_grid(rows: list[torch.Tensor], row_labels: list[str], title: str = "") -> bytes:
    """Rows of images in [0, 1] (each row N x C x H x W), e.g. originals over reconstructions."""
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(
        len(rows), n, figsize=(0.9 * n + 0.8, 0.95 * len(rows) + 0.3), squeeze=False
    )
    for i, (row, label) in enumerate(zip(rows, row_labels, strict=True)):
        for j in range(n):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(_hwc(row[j]), cmap="gray" if row.shape[1] == 1 else None, vmin=0, vmax=1)
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def _hwc(image: torch.Tensor) -> np.ndarray:
    array = image.detach().float().cpu().clamp(0, 1).numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def confusion(matrix: list[list[int]], classes: list[str]) -> bytes:
    """Row-normalised confusion matrix (rows: true class), counts written in the cells."""
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 0.5 * len(classes) + 2
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return to_png(fig)


def sweep_plot(series: dict[str, list[tuple]], xlabel: str, ylabel: str) -> bytes:
    """Metric against a swept value: points (x, y) or (x, y, std), std drawn as error bars.

    Numeric x goes on a log axis when it spans a decade or more."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for label, points in series.items():
        points = [p for p in points if p[1] is not None]
        xs = [p[0] for p in points]
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
        positions = xs if numeric else list(range(len(xs)))
        errors = [p[2] if len(p) > 2 else 0.0 for p in points]
        ax.errorbar(
            positions,
            [p[1] for p in points],
            yerr=errors if any(errors) else None,
            marker="o",
            capsize=3,
            label=label,
        )
        if not numeric:
            ax.set_xticks(positions, [str(x) for x in xs])
        elif xs and min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)
