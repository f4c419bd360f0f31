"""Figures of a latent analysis: t-SNE maps with their scores, PCA curve, decoded strips."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from replab.evaluation.analysis import LatentAnalysis
from replab.evaluation.latent import PCAResult
from replab.reporting.figures import image_grid, plain, plt, to_png

# compare finds each run's map by this name
TSNE_FIGURE = "t-SNE: image space vs latent space (test sample)"
PLANE_FIGURE = "2-D latent space before and after training (test sample)"


def score_line(scores) -> str:
    line = f"kNN acc {scores.knn_accuracy:.3f} · silhouette {scores.silhouette:.3f}"
    return line + (
        f" · trustworthiness {scores.trustworthiness:.3f}"
        if scores.trustworthiness is not None
        else ""
    )


def tsne_maps(
    maps: Sequence[tuple[str, np.ndarray, object]],
    labels: np.ndarray,
    classes: list[str],
    ticks: bool = False,
) -> bytes:
    """A row of scatters (title, points, scores), coloured by class, one shared legend.

    t-SNE coordinates mean nothing, so they get no ticks; a 2-D latent drawn as it is does.
    Class names and titles are drawn as text (``plain``), never as mathtext."""
    fig, axes = plt.subplots(1, len(maps), figsize=(5.2 * len(maps), 5.0), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (title, points, scores) in zip(axes[0], maps, strict=True):
        for c in np.unique(labels):
            mask = labels == c
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                s=4,
                color=cmap(int(c) % 10),
                label=plain(classes[int(c)]),
                alpha=0.8,
            )
        ax.set_title(f"{plain(title)}\n{score_line(scores)}", fontsize=9)
        if not ticks:
            ax.set_xticks([])
            ax.set_yticks([])
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        loc="lower center",
        ncol=min(10, len(names)),
        markerscale=3,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return to_png(fig)


def tsne_points(analysis: LatentAnalysis, classes: list[str]) -> dict | None:
    """The t-SNE maps as plain data (rounded coordinates), for redrawing runs side by side."""
    spaces = [
        {
            "name": s.name,
            "points": np.round(s.points, 3).tolist(),
            "scores": dataclasses.asdict(s.scores),
        }
        for s in analysis.spaces
        if s.points is not None
    ]
    return (
        {"labels": analysis.labels.tolist(), "classes": classes, "spaces": spaces}
        if spaces
        else None
    )


def pca_curve(result: PCAResult, title: str = "PCA of the test latents") -> bytes:
    cumulative = result.cumulative
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(np.arange(1, len(cumulative) + 1), cumulative, lw=1.8)
    for fraction, style in ((0.95, "--"), (0.99, ":")):
        k = result.components_for(fraction)
        ax.axhline(fraction, color="grey", lw=0.8, ls=style)
        ax.axvline(k, color="grey", lw=0.8, ls=style)
        ax.annotate(
            f"{fraction:.0%}: {k} components",
            (k, fraction),
            textcoords="offset points",
            xytext=(6, -14),
            fontsize=8,
        )
    ax.set_xlabel("components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_title(plain(title), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def pca_scatter(analysis: LatentAnalysis, classes: list[str]) -> bytes:
    """The test sample on the latents' first two principal components (report 003, figure 9)."""
    points, ratio = analysis.pca.projection[analysis.index], analysis.pca.explained_variance_ratio
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(analysis.labels):
        mask = analysis.labels == c
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=4,
            color=cmap(int(c) % 10),
            label=plain(classes[int(c)]),
            alpha=0.8,
        )
    ax.set(xlabel=f"PC 1 ({ratio[0]:.0%} of the variance)", ylabel=f"PC 2 ({ratio[1]:.0%})")
    ax.legend(fontsize=7, markerscale=3, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


def analysis_figures(
    analysis: LatentAnalysis, classes: list[str], name: str = ""
) -> dict[str, bytes]:
    figs: dict[str, bytes] = {}
    for figure, direct in ((TSNE_FIGURE, False), (PLANE_FIGURE, True)):
        maps = [
            (s.name, s.points, s.scores)
            for s in analysis.spaces
            if s.points is not None and s.direct == direct
        ]
        if maps:
            figs[figure] = tsne_maps(maps, analysis.labels, classes, ticks=direct)
    figs["PCA explained variance of the latents"] = pca_curve(analysis.pca)
    if analysis.pca.components.shape[1] > 2:
        figs["PCA of the test latents: the first two components"] = pca_scatter(analysis, classes)
    if analysis.interpolation is not None and analysis.interpolation_labels is not None:
        a, b = analysis.interpolation_labels
        figs[f"latent interpolation {a} → {b}"] = image_grid(
            [analysis.interpolation], [f"{a} → {b}"]
        )
    if analysis.traversal is not None:
        rows = list(analysis.traversal)
        figs["traversal between four test images (corners)"] = image_grid(rows, [""] * len(rows))
    if analysis.samples is not None:
        per_row = 8
        rows = [analysis.samples[i : i + per_row] for i in range(0, len(analysis.samples), per_row)]
        source = (
            "the prior N(0, I)"
            if analysis.samples_from_prior
            else "a Gaussian fitted to the latents"
        )
        figs[f"random samples decoded from {source}"] = image_grid(rows, [""] * len(rows))
    return figs


def sprite_sheet(images: torch.Tensor) -> tuple[bytes, int]:
    """Images (N, C, H, W) uint8 tiled into one PNG, ``cols`` per row, for the hover map."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    padded = torch.zeros(cols * cols, c, h, w, dtype=torch.uint8)
    padded[:n] = images
    # (row, col, C, H, W) -> (row*H, col*W, C): one reshape instead of a loop over tiles.
    array = (
        padded.view(cols, cols, c, h, w)
        .permute(0, 3, 1, 4, 2)
        .reshape(cols * h, cols * w, c)
        .numpy()
    )
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if c == 1 else array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), cols


def hover_map(
    analysis: LatentAnalysis, test_images: torch.Tensor, classes: list[str]
) -> dict | None:
    """Data for the report's interactive latent map: points, labels and a thumbnail sprite."""
    latent = next(
        (s for s in analysis.spaces if s.name == "latent space" and s.points is not None), None
    )
    if latent is None or latent.points is None:
        return None
    points = latent.points
    lo, hi = points.min(0), points.max(0)
    unit = (points - lo) / np.where(hi > lo, hi - lo, 1)
    sprite, cols = sprite_sheet(test_images[torch.as_tensor(analysis.index)].cpu())
    return {
        "points": [
            [round(float(x), 4), round(float(y), 4), int(c)]
            for (x, y), c in zip(unit, analysis.labels, strict=True)
        ],
        "classes": list(classes),
        "sprite": sprite,
        "cols": cols,
        "tile": [int(test_images.shape[3]), int(test_images.shape[2])],
    }
