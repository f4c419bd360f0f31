"""How well latents separate the classes without training anything: kNN, silhouette,
trustworthiness, and the effective rank that shows a collapsed space.

A linear probe measures separability after fitting; these scores need no fitting and no
hyper-parameter search, so they compare encoders cheaply and show whether a 2-D picture
(t-SNE, PCA) is faithful to the neighbourhoods it claims to show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from replab.evaluation.latent import stratified_sample
from replab.evaluation.rank import effective_rank
from replab.io import import_limited

METRICS = ("cosine", "euclidean")


def knn_accuracy(
    train_z, train_y, test_z, test_y, k: int = 5, metric: str = "cosine", batch_size: int = 512
) -> float:
    """Accuracy of a k-nearest-neighbour vote of ``train`` labels on ``test`` points.

    Distances are one matmul per batch of test points (on whatever device the tensors
    are), so 10k x 60k runs in seconds. A tied vote goes to the tied class whose member is
    nearest, which unlike sklearn's lowest-label rule does not favour class 0.
    """
    train_z, test_z = _float(train_z), _float(test_z)
    train_y, test_y = _long(train_y).to(train_z.device), _long(test_y).to(train_z.device)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    if not 1 <= k <= len(train_z):
        raise ValueError(f"k={k} needs 1 <= k <= {len(train_z)} (the number of train points)")
    classes, train_index = torch.unique(train_y, return_inverse=True)
    if metric == "cosine":
        train_z = F.normalize(train_z, dim=1)
    correct = 0
    for start in range(0, len(test_z), batch_size):
        batch = test_z[start : start + batch_size].to(train_z.device)
        neighbours = _similarity(batch, train_z, metric).topk(k, dim=1).indices  # nearest first
        predicted = classes[_vote(train_index[neighbours], len(classes))]
        correct += (predicted == test_y[start : start + batch_size]).sum().item()
    return correct / max(len(test_z), 1)


def silhouette(z, y, sample: int = 5000, seed: int = 0, metric: str = "euclidean") -> float:
    """Mean silhouette coefficient (-1 .. 1) on a stratified sample of at most ``sample`` points.

    The score is O(n^2) in time and memory, hence the sample; stratifying keeps every
    class in it so the score is defined whenever the data has two classes.
    """
    silhouette_score = import_limited("sklearn.metrics").silhouette_score

    x, labels = _float(z).cpu().numpy(), _long(y).cpu().numpy()
    index = stratified_sample(labels, sample, seed)
    if len(np.unique(labels[index])) < 2:
        raise ValueError("silhouette needs at least two classes among the sampled points")
    return float(silhouette_score(x[index], labels[index], metric=metric))


def trustworthiness(high, low, n_neighbors: int = 10, sample: int = 5000, seed: int = 0) -> float:
    """sklearn's trustworthiness (0 .. 1) of ``low`` (e.g. t-SNE 2-D) as a map of ``high``.

    1 means no point gains neighbours in the map that it lacked in the latent space, i.e.
    the clusters the picture shows are really there. Rows must correspond; at most
    ``sample`` random rows are scored because sklearn builds full distance matrices.
    """
    sk_trustworthiness = import_limited("sklearn.manifold").trustworthiness

    x, x2 = _float(high).cpu().numpy(), _float(low).cpu().numpy()
    if len(x) != len(x2):
        raise ValueError(f"high has {len(x)} rows but low has {len(x2)}: rows must correspond")
    if len(x) > sample:
        index = np.sort(np.random.default_rng(seed).choice(len(x), sample, replace=False))
        x, x2 = x[index], x2[index]
    return float(sk_trustworthiness(x, x2, n_neighbors=min(n_neighbors, len(x) // 2 - 1)))


@dataclass
class Separability:
    knn_accuracy: float
    k: int
    metric: str
    silhouette: float
    trustworthiness: float | None  # of z2d as a map of z; None when no 2-D map was given
    # RankMe of z (evaluation/rank.py); None in analyses saved before it was measured
    effective_rank: float | None = None


def separability(
    z,
    y,
    z2d=None,
    *,
    z2d_index=None,
    train_z=None,
    train_y=None,
    k: int = 5,
    metric: str = "cosine",
    sample: int = 5000,
    seed: int = 0,
) -> Separability:
    """kNN accuracy, silhouette and (given a 2-D map) trustworthiness of latents ``z``.

    kNN votes with ``train_z``/``train_y`` when given, else on a seeded 80/20 split of ``z``
    (so no point votes for itself). ``z2d`` embeds the rows ``z2d_index`` of ``z`` (all
    rows when None), which lets a t-SNE of a sample be scored against the full set's latents.
    """
    z, y = _float(z), _long(y)
    if train_z is None:
        order = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))
        cut = int(0.8 * len(z))
        train, test = order[:cut], order[cut:]
        knn = knn_accuracy(z[train], y[train], z[test], y[test], k, metric)
    else:
        knn = knn_accuracy(train_z, train_y, z, y, k, metric)
    trust = None
    if z2d is not None:
        high = (
            z if z2d_index is None else z[torch.as_tensor(np.asarray(z2d_index), dtype=torch.long)]
        )
        trust = trustworthiness(high, z2d, sample=sample, seed=seed)
    scores = Separability(knn, k, metric, silhouette(z, y, sample, seed), trust)
    scores.effective_rank = effective_rank(z)
    return scores


def _similarity(queries: torch.Tensor, keys: torch.Tensor, metric: str) -> torch.Tensor:
    """Larger is nearer: cosine similarity (keys pre-normalised) or negative squared distance."""
    if metric == "cosine":
        return F.normalize(queries, dim=1) @ keys.T
    return 2 * queries @ keys.T - queries.pow(2).sum(1, keepdim=True) - keys.pow(2).sum(1)


def _vote(neighbour_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Majority label per row of (B, k) labels sorted nearest first; ties go to the nearest."""
    votes = torch.zeros(
        len(neighbour_labels), num_classes, dtype=torch.long, device=neighbour_labels.device
    )
    votes.scatter_add_(1, neighbour_labels, torch.ones_like(neighbour_labels))
    tied = votes == votes.max(1, keepdim=True).values
    # First neighbour (nearest) whose class is among the tied winners; argmax returns the first max.
    first = tied.gather(1, neighbour_labels).int().argmax(1, keepdim=True)
    return neighbour_labels.gather(1, first).squeeze(1)


def _float(z) -> torch.Tensor:
    tensor = z.detach() if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z))
    return tensor.reshape(len(tensor), -1).float()


def _long(y) -> torch.Tensor:
    tensor = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    return tensor.reshape(-1).long()
