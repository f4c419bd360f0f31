"""PCA, sampling, t-SNE, interpolation, traversal grids and latent sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from replab.data import Normalizer
from replab.evaluation import (
    decode,
    interpolate,
    knn_accuracy,
    pca,
    sample_latents,
    sample_prior,
    stratified_sample,
    traversal_grid,
    tsne_2d,
)


def anisotropic(n=400, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d))
        * np.linspace(3, 0.2, d)
        @ np.linalg.qr(rng.standard_normal((d, d)))[0]
        + 2.0
    )


@pytest.mark.parametrize("n_components", [None, 3])
def test_pca_matches_sklearn(n_components):
    z = anisotropic()
    ours = pca(torch.from_numpy(z).float(), n_components)
    theirs = PCA(n_components=n_components).fit(z)
    np.testing.assert_allclose(
        ours.explained_variance_ratio, theirs.explained_variance_ratio_, rtol=1e-4
    )
    np.testing.assert_allclose(
        ours.cumulative, np.cumsum(theirs.explained_variance_ratio_), rtol=1e-4
    )
    assert ours.components.shape == (8 if n_components is None else 3, 8)
    # Same 2-D picture up to the sign of each axis.
    np.testing.assert_allclose(
        np.abs(ours.projection), np.abs(theirs.transform(z)[:, :2]), atol=1e-3
    )


def test_pca_signs_are_deterministic():
    z = anisotropic()
    first, again = pca(z), pca(z[::-1].copy())  # row order must not flip an axis
    np.testing.assert_allclose(first.components, again.components, atol=1e-8)


def known_spectrum(variances, n=1000, seed=0):
    """Points whose covariance has exactly ``variances`` as eigenvalues, in a rotated basis."""
    rng = np.random.default_rng(seed)
    d = len(variances)
    x = rng.standard_normal((n, d))
    q, _ = np.linalg.qr(x - x.mean(0))  # centred orthonormal columns
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sqrt(np.asarray(variances) * (n - 1)) @ rotation + 5.0


def test_components_for_known_spectrum():
    result = pca(known_spectrum([0.5, 0.3, 0.15, 0.04, 0.01]))
    np.testing.assert_allclose(
        result.explained_variance_ratio, [0.5, 0.3, 0.15, 0.04, 0.01], atol=1e-9
    )
    assert result.components_for(0.5) == 1
    assert result.components_for(0.9) == 3
    assert result.components_for(0.95) == 3  # reached exactly at three
    assert result.components_for(0.96) == 4
    assert result.components_for(0.99) == 4
    assert result.components_for(1.0) == 5
    # Truncated: ratios stay fractions of the total, and an unreachable fraction gives all kept.
    truncated = pca(known_spectrum([0.5, 0.3, 0.15, 0.04, 0.01]), n_components=2)
    np.testing.assert_allclose(truncated.cumulative, [0.5, 0.8], atol=1e-9)
    assert truncated.components_for(0.95) == 2


def test_stratified_sample_keeps_class_shares():
    y = np.repeat([0, 1, 2], [600, 300, 100])
    index = stratified_sample(torch.from_numpy(y), 100, seed=0)
    assert len(index) == 100 and len(set(index.tolist())) == 100
    assert np.bincount(y[index]).tolist() == [60, 30, 10]
    assert np.array_equal(index, np.sort(index))
    assert np.array_equal(index, stratified_sample(y, 100, seed=0))
    assert not np.array_equal(index, stratified_sample(y, 100, seed=1))
    # Largest remainder: 7 of 1000 split 4.2 / 2.1 / 0.7 -> 4, 2, 1 (the rare class survives).
    assert np.bincount(y[stratified_sample(y, 7, seed=0)], minlength=3).tolist() == [4, 2, 1]
    assert np.array_equal(stratified_sample(y, 5000), np.arange(1000))


def three_blobs(n_per_class=100, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    return (8 * np.eye(10)[y] + rng.standard_normal((len(y), 10))).astype(np.float32), y


def test_tsne_2d_shape_determinism_and_clusters():
    z, y = three_blobs()
    # One thread: openTSNE's threads slow ~10x when other jobs share the two cores.
    first = tsne_2d(torch.from_numpy(z), seed=0, n_jobs=1)
    assert first.shape == (300, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, tsne_2d(z, seed=0, n_jobs=1))
    split = np.random.default_rng(0).permutation(300)
    train, test = split[:240], split[240:]
    assert (
        knn_accuracy(first[train], y[train], first[test], y[test], k=5, metric="euclidean") > 0.95
    )


def test_tsne_2d_tiny_input_caps_perplexity():
    z, _ = three_blobs(n_per_class=10)
    assert tsne_2d(z, seed=1, n_jobs=1).shape == (30, 2)


class Images(nn.Module):
    """A decoder to (N, 1, 2, 3) images; ``dropout`` makes train mode visibly different."""

    def __init__(self, dim=4, linear=True, dropout=0.0):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Linear(dim, 6), nn.Dropout(dropout), nn.Identity() if linear else nn.Tanh()
        )

    def forward(self, z):
        return self.net(z).view(-1, 1, 2, 3)


def test_interpolate_endpoints_and_eval_mode():
    decoder = Images(linear=False, dropout=0.5)
    decoder.train()
    z_a, z_b = torch.randn(4), torch.randn(4)
    images = interpolate(decoder, z_a, z_b, steps=7)
    assert images.shape == (7, 1, 2, 3)
    assert decoder.training  # mode restored
    decoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(images[0], decoder(z_a[None])[0])
        torch.testing.assert_close(images[-1], decoder(z_b[None])[0])


def test_interpolate_linear_decoder_is_evenly_spaced():
    images = interpolate(Images(), torch.zeros(4), torch.ones(4), steps=5)
    steps = images[1:] - images[:-1]
    assert steps.abs().max() > 0
    torch.testing.assert_close(steps, steps[:1].expand_as(steps), atol=1e-6, rtol=0)


def test_traversal_grid_corners_and_centre():
    decoder = Images()
    z4 = torch.randn(4, 4)
    grid = traversal_grid(decoder, z4, steps=5)
    assert grid.shape == (5, 5, 1, 2, 3)
    corners = decode(decoder, z4)
    for (i, j), corner in zip([(0, 0), (0, -1), (-1, 0), (-1, -1)], corners, strict=True):
        torch.testing.assert_close(grid[i, j], corner)
    # A linear decoder maps the bilinear centre to the mean of the corner images.
    torch.testing.assert_close(grid[2, 2], corners.mean(0), atol=1e-6, rtol=0)
    # The middle of the top edge lies halfway between the top corners.
    torch.testing.assert_close(grid[0, 2], (corners[0] + corners[1]) / 2, atol=1e-6, rtol=0)


def test_decode_with_normalizer_returns_pixels():
    normalizer = Normalizer(torch.tensor(0.5).view(1, 1, 1, 1), torch.tensor(0.25).view(1, 1, 1, 1))
    z = torch.randn(9, 4) * 10
    raw = decode(Images(), z)
    pixels = decode(Images(), z, normalizer)
    torch.testing.assert_close(pixels, (raw * 0.25 + 0.5).clamp(0, 1))
    assert pixels.min() == 0 and pixels.max() == 1  # large latents: clamping happened


def test_sample_latents_reproduces_mean_and_covariance():
    rng = np.random.default_rng(0)
    mixing = rng.standard_normal((4, 4))
    z = torch.from_numpy(rng.standard_normal((5000, 4)) @ mixing + [1.0, -2.0, 0.5, 3.0]).float()
    samples = sample_latents(z, 100_000, seed=0)
    assert samples.shape == (100_000, 4) and samples.dtype == torch.float32
    torch.testing.assert_close(samples.mean(0), z.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(z.T), atol=0.1, rtol=0.03)
    torch.testing.assert_close(sample_latents(z, 10, seed=3), sample_latents(z, 10, seed=3))
    assert not torch.equal(sample_latents(z, 10, seed=3), sample_latents(z, 10, seed=4))


def test_sample_latents_with_a_dead_dimension():
    z = torch.randn(500, 3)
    z[:, 1] = 0.7  # constant: singular covariance
    samples = sample_latents(z, 1000, seed=0)
    assert torch.isfinite(samples).all()
    torch.testing.assert_close(samples[:, 1], torch.full((1000,), 0.7), atol=1e-5, rtol=0)


def test_sample_prior_is_standard_normal_and_seeded():
    samples = sample_prior(8, 50_000, seed=0)
    assert samples.shape == (50_000, 8)
    torch.testing.assert_close(samples.mean(0), torch.zeros(8), atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.ones(8), atol=0.03, rtol=0)
    assert torch.equal(sample_prior(8, 5, seed=1), sample_prior(8, 5, seed=1))


@pytest.mark.parametrize(("torch_threads", "expected"), [(1, 1), (2, 2), (3, 2)])
def test_tsne_threads_follow_the_run(torch_threads, expected, monkeypatch):
    """One thread beside other work (two 2-thread maps on 2 cores wait on each other), else
    two: the map depends only on whether the run has one thread, not on the host."""
    from replab.evaluation.latent import tsne_threads

    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    assert tsne_threads() == expected


@pytest.mark.parametrize("iterations", [None, (20, 30)])
def test_tsne_runs_the_iterations_it_is_given(iterations, monkeypatch):
    """The analysis's schedule (spec.tsne_iterations, default 125 + 375) reaches openTSNE."""
    import openTSNE

    from replab.evaluation.latent import TSNE_ITERATIONS, tsne_2d
    from replab.spec import AnalysisSpec

    asked = []
    real = openTSNE.TSNE

    def recording(**kw):
        asked.append((kw["early_exaggeration_iter"], kw["n_iter"]))
        return real(**kw)

    monkeypatch.setattr(openTSNE, "TSNE", recording)
    z = torch.randn(60, 4, generator=torch.Generator().manual_seed(0))
    if iterations is None:
        tsne_2d(z)
        assert asked == [TSNE_ITERATIONS] == [AnalysisSpec().tsne_iterations] == [(125, 375)]
    else:
        tsne_2d(z, iterations=iterations)
        assert asked == [iterations]
