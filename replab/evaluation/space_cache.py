"""The image space's map and scores, kept between runs.

Every run on one test set maps and scores the same pixels: the same stratified sample, the
same seed, the same kNN settings. Its t-SNE alone is about half of a run's analysis, so the
first run computes it and later runs on that test set read it back. The key is a hash of
everything the result depends on (the pixels themselves, the sample, the settings and
openTSNE's version), so a changed dataset, sample or setting never reads a stale map. The
file holds plain arrays, read without unpickling.
"""

from __future__ import annotations

import hashlib
import io
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from replab.evaluation.separability import Separability
from replab.io import atomic_write_bytes

FORMAT = 2  # bump when what is stored or how it is computed changes (2: exact neighbours)


def space_key(images: torch.Tensor, index: np.ndarray, settings: dict) -> str:
    digest = hashlib.sha256()
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.asarray(index, dtype=np.int64).tobytes())
    digest.update(
        repr(sorted({**settings, "format": FORMAT, "opentsne": _tsne_version()}.items())).encode()
    )
    return digest.hexdigest()[:32]


def load(folder: Path, key: str) -> tuple[np.ndarray | None, Separability] | None:
    """The cached (points, scores), or None when absent or unreadable (then recomputed)."""
    path = Path(folder) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            points = data["points"] if data["has_points"] else None
            scores = Separability(
                knn_accuracy=float(data["knn_accuracy"]),
                k=int(data["k"]),
                metric=str(data["metric"]),
                silhouette=float(data["silhouette"]),
                trustworthiness=float(data["trust"]) if data["has_trust"] else None,
                effective_rank=float(data["effective_rank"]),
            )
    except (OSError, KeyError, ValueError):
        return None
    return points, scores


def save(folder: Path, key: str, points: np.ndarray | None, scores: Separability) -> None:
    """Best effort: a cache that cannot be written only costs the next run the recomputation."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        points=np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64),
        has_points=points is not None,
        knn_accuracy=scores.knn_accuracy,
        k=scores.k,
        metric=scores.metric,
        silhouette=scores.silhouette,
        trust=scores.trustworthiness or 0.0,
        has_trust=scores.trustworthiness is not None,
        effective_rank=scores.effective_rank or 0.0,
    )
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(folder) / f"{key}.npz", buffer.getvalue())
    except OSError:
        pass


def _tsne_version() -> str:
    try:
        return version("openTSNE")
    except PackageNotFoundError:
        return "none"
