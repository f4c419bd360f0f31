"""Figures as PNG bytes (matplotlib, headless), ready to save and embed."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def plain(text: object) -> str:
    """``text`` drawn as it is: matplotlib reads a string with two ``$`` as mathtext (a class
    named ``a$b$c`` draws as maths, one named ``$\\frac{`` fails the whole figure), so every
    ``$`` of a user's string (class names, titles, labels) is escaped."""
    return str(text).replace("$", r"\$")


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
        fig.suptitle(plain(title))
    fig.tight_layout()
    return to_png(fig)


def label_curves(spaces: dict, per_class_full: float) -> bytes:
    """Test accuracy against labels per class on a log axis, mean ± std over draws as a band:
    the linear curve solid, the kNN one dotted, the pixels dashed; the full-label linear probe
    as a last point at the train split's labels per class."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, (name, curves) in enumerate(spaces.items()):
        colour = "grey" if name == "pixels" else f"C{i}"
        for kind, curve, style in (("linear", curves.linear, "-"), ("kNN", curves.knn, ":")):
            style = "--" if name == "pixels" and kind == "linear" else style
            shots = curve.shots
            mean = np.array([curve.mean(k) for k in shots])
            std = np.array([curve.std(k) for k in shots])
            ax.plot(shots, mean, style, color=colour, marker="o", ms=3, label=f"{name}, {kind}")
            ax.fill_between(shots, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
            if curve.full is not None:
                ax.plot([shots[-1], per_class_full], [mean[-1], curve.full], ":", color=colour)
                ax.plot([per_class_full], [curve.full], "*", color=colour, ms=8)
    ax.set_xscale("log")
    ax.set_xlabel("labels per class (log); ★ all train labels, linear probe")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)


def monitor_curves(history: list[dict], collapsed: float) -> bytes:
    """The monitors per epoch: kNN (and refitted linear) accuracy on the val sample, and the
    effective rank with the collapse floor; a collapse is named in the title."""
    rows = [r for r in history if "val_knn" in r]
    epochs = [r["epoch"] for r in rows]
    fig, (acc, rank) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    for key, label in (("val_knn", "kNN"), ("val_linear", "linear (refitted)")):
        if key in rows[0]:
            acc.plot(epochs, [r[key] for r in rows], marker="o", markersize=3, label=label)
    acc.set_ylabel("val accuracy (monitor sample)")
    rank.plot(epochs, [r["val_rank"] for r in rows], marker="o", markersize=3, color="C2")
    rank.axhline(collapsed, color="C3", ls="--", lw=0.8, label=f"collapse floor ({collapsed:g})")
    rank.set_ylabel("effective rank (val latents)")
    for ax in (acc, rank):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    low = [r["epoch"] for r in rows if r["val_rank"] < collapsed]
    if low:
        fig.suptitle(f"collapsed: effective rank under {collapsed:g} from epoch {low[0]}")
    fig.tight_layout()
    return to_png(fig)


def image_grid(rows: list[torch.Tensor], row_labels: list[str], title: str = "") -> bytes:
    """Rows of images in [0, 1] (each row N x C x H x W), e.g. originals over reconstructions.

    The images are tiled into one array drawn once: an axes per image (64 for a traversal)
    cost matplotlib about 0.6 s a figure, several seconds of every run's evaluation."""
    n = max(len(r) for r in rows)
    mosaic, step = _mosaic(rows, n)
    fig, ax = plt.subplots(figsize=(0.9 * n + 0.8, 0.95 * len(rows) + 0.3))
    ax.imshow(mosaic, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks(
        [step * i + (step - 1) / 2 for i in range(len(rows))],
        [plain(label) for label in row_labels],
        fontsize=9,
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(plain(title), fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def _mosaic(rows: list[torch.Tensor], n: int) -> tuple[np.ndarray, int]:
    """(rows x n) images as one RGB array on white, a thin gap between neighbours; and the
    pixel step from one row to the next."""
    h, w = rows[0].shape[-2:]
    gap = max(1, h // 14)
    mosaic = np.ones((len(rows) * (h + gap) - gap, n * (w + gap) - gap, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        # (N, C, H, W) -> (N, H, W, 3): grey images repeat their one channel
        rgb = row.detach().float().cpu().clamp(0, 1).expand(-1, 3, -1, -1).permute(0, 2, 3, 1)
        for j, image in enumerate(rgb.numpy()):
            y, x = i * (h + gap), j * (w + gap)
            mosaic[y : y + h, x : x + w] = image
    return mosaic, h + gap


# Above this many classes the confusion matrix is drawn compact: a figure 0.5 inch a class with
# a text per cell grew with the square of the classes (500: 250 000 texts on a 250-inch canvas,
# gigabytes, while the run's status stayed "running").
CONFUSION_CELLS = 50
CONFUSED_PAIRS = 8  # the most confused pairs listed under the compact form


def confusion(matrix: list[list[int]], classes: list[str]) -> bytes:
    """Row-normalised confusion matrix (rows: true class), counts written in the cells; above
    ``CONFUSION_CELLS`` classes, a fixed-size image (see ``_confusion_compact``)."""
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    if len(classes) > CONFUSION_CELLS:
        return _confusion_compact(counts, rates, classes)
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
    names = [plain(name) for name in classes]
    ax.set_xticks(range(len(classes)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return to_png(fig)


def _confusion_compact(counts: np.ndarray, rates: np.ndarray, classes: list[str]) -> bytes:
    """Many classes: the rates as one image of a fixed size, class indices on the axes, no
    text per cell, and the most confused pairs by name underneath; its memory and time do not
    grow with the classes beyond the matrix itself."""
    n = len(classes)
    fig, ax = plt.subplots(figsize=(7.5, 7.2))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="share of the true class")
    ax.set_xlabel("predicted (class index)")
    ax.set_ylabel("true (class index)")
    ax.set_title(f"{n} classes: rates only, counts not written", fontsize=9)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    top = [int(k) for k in np.argsort(off, axis=None)[::-1][:CONFUSED_PAIRS]]
    pairs = [
        f"{plain(_short(classes[k // n]))} \u2192 {plain(_short(classes[k % n]))}: "
        f"{int(off.flat[k])}"
        for k in top
        if off.flat[k] > 0
    ]
    if pairs:
        fig.text(
            0.02,
            0.0,
            "most confused (true \u2192 predicted: count): " + "; ".join(pairs),
            fontsize=7,
            wrap=True,
            va="top",
        )
    fig.tight_layout()
    return to_png(fig)


def _short(name: str, most: int = 24) -> str:
    name = str(name)
    return name if len(name) <= most else name[: most - 1] + "\u2026"


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
            label=plain(label),
        )
        if not numeric:
            ax.set_xticks(positions, [plain(x) for x in xs])
        elif xs and min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return to_png(fig)
