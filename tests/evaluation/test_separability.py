"""kNN accuracy, silhouette and trustworthiness against scikit-learn and constructed geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from replab.evaluation import knn_accuracy, pca, separability, silhouette, trustworthiness


def blobs(n_per_class=100, classes=4, dim=16, spread=0.3, seed=0):
    """Gaussian blobs around orthogonal directions: separated by angle and by distance."""
    rng = np.random.default_rng(seed)
    centres = 5 * np.eye(dim)[:classes] + 1.0
    y = np.repeat(np.arange(classes), n_per_class)
    z = centres[y] + spread * rng.standard_normal((len(y), dim))
    order = rng.permutation(len(y))
    return z[order].astype(np.float32), y[order]


def sklearn_knn(train_z, train_y, test_z, test_y, k, metric):
    clf = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute").fit(
        train_z, train_y
    )
    return clf.score(test_z, test_y)


def reference_knn(train_z, train_y, test_z, test_y, k):
    """Plain numpy cosine kNN, ties broken by the nearest tied neighbour."""
    a = train_z / np.linalg.norm(train_z, axis=1, keepdims=True)
    b = test_z / np.linalg.norm(test_z, axis=1, keepdims=True)
    correct = 0
    for row, label in zip(b @ a.T, test_y, strict=True):
        labels = train_y[np.argsort(-row, kind="stable")[:k]]
        counts = np.bincount(labels)
        winners = set(np.flatnonzero(counts == counts.max()))
        correct += next(c for c in labels if c in winners) == label
    return correct / len(test_y)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_sklearn_on_blobs(metric):
    # Touching blobs: a few errors to agree on. Tied votes (rare here) are where the rules may
    # differ, hence one point of slack; the tie rule itself is tested against reference_knn.
    z, y = blobs(spread=1.3)
    ours = knn_accuracy(
        torch.from_numpy(z[:300]),
        torch.from_numpy(y[:300]),
        torch.from_numpy(z[300:]),
        torch.from_numpy(y[300:]),
        k=5,
        metric=metric,
    )
    theirs = sklearn_knn(z[:300], y[:300], z[300:], y[300:], 5, metric)
    assert abs(round(ours * 100) - round(theirs * 100)) <= 1  # within one of the 100 test points
    assert 0.9 < ours < 1
    z, y = blobs(spread=0.3)
    assert knn_accuracy(z[:300], y[:300], z[300:], y[300:], k=5, metric=metric) == 1.0


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_knn_equals_sklearn_on_random_two_class_data(metric, seed):
    # Two classes and odd k: a vote cannot tie, so both rules must agree on every point.
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((600, 8)).astype(np.float32)
    y = rng.integers(0, 2, 600)
    ours = knn_accuracy(z[:400], y[:400], z[400:], y[400:], k=7, metric=metric, batch_size=64)
    assert ours == sklearn_knn(z[:400], y[:400], z[400:], y[400:], 7, metric)
    assert 0.3 < ours < 0.7  # random labels: chance level, so the comparison is not trivial


def test_knn_multiclass_ties_go_to_the_nearest():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((500, 6)).astype(np.float32)
    y = rng.integers(0, 5, 500)
    for k in (2, 4, 6):  # even k over 5 classes: many tied votes
        ours = knn_accuracy(z[:400], y[:400], z[400:], y[400:], k=k)
        assert ours == pytest.approx(
            reference_knn(z[:400], y[:400], z[400:], y[400:], k), abs=1e-12
        )


def test_knn_tie_break_constructed():
    # Test point at angle 0; class 1 sits at angle 0.1, class 0 at 0.2. A 1-1 vote must pick
    # class 1 (nearest); sklearn's lowest-label rule would pick class 0.
    angles = torch.tensor([0.1, 0.2])
    train = torch.stack([angles.cos(), angles.sin()], 1)
    assert (
        knn_accuracy(
            train, torch.tensor([1, 0]), torch.tensor([[1.0, 0.0]]), torch.tensor([1]), k=2
        )
        == 1.0
    )


def test_knn_rejects_bad_arguments():
    z, y = blobs(n_per_class=5)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(z, y, z, y, metric="manhattan")
    with pytest.raises(ValueError, match="k="):
        knn_accuracy(z[:3], y[:3], z, y, k=5)


def test_silhouette_separated_vs_shuffled():
    z, y = blobs(n_per_class=150)
    assert silhouette(z, y) > 0.5
    shuffled = np.random.default_rng(0).permutation(y)
    assert abs(silhouette(z, shuffled)) < 0.1
    # Subsampled (stratified) it stays high and is deterministic for a seed.
    assert silhouette(z, y, sample=100, seed=1) > 0.5
    assert silhouette(z, y, sample=100, seed=1) == silhouette(z, y, sample=100, seed=1)


def test_silhouette_needs_two_classes():
    z, _ = blobs(n_per_class=10)
    with pytest.raises(ValueError, match="two classes"):
        silhouette(z, np.zeros(len(z), dtype=int))


def plane_in_10d(n=400, seed=0):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((10, 2)))
    return rng.standard_normal((n, 2)) @ basis.T + 0.01 * rng.standard_normal((n, 10))


def test_trustworthiness_of_pca_of_a_plane_is_one():
    high = plane_in_10d()
    assert trustworthiness(high, pca(high).projection) > 0.995
    # A map that ignores the data is far from trustworthy.
    assert trustworthiness(high, np.random.default_rng(1).standard_normal((400, 2))) < 0.7


def test_trustworthiness_subsamples_and_checks_rows():
    high = plane_in_10d(n=600)
    assert trustworthiness(high, pca(high).projection, sample=200) > 0.99
    with pytest.raises(ValueError, match="rows"):
        trustworthiness(high, high[:10, :2])


def test_separability_bundle():
    z, y = blobs(n_per_class=100)
    result = separability(torch.from_numpy(z), torch.from_numpy(y))
    assert result.knn_accuracy == 1.0 and result.k == 5 and result.metric == "cosine"
    assert result.silhouette > 0.5 and result.trustworthiness is None
    index = np.arange(0, 400, 2)
    mapped = separability(z, y, pca(z[index]).projection, z2d_index=index)
    assert 0.5 < mapped.trustworthiness <= 1
    # A separate train set: kNN then scores all of z, which here is wrongly labelled.
    given = separability(z, (y + 1) % 4, train_z=z, train_y=y, k=1)
    assert given.knn_accuracy == 0.0
