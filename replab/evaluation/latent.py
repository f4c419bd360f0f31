"""Latent-space geometry and generation: PCA, t-SNE, interpolation, traversals and sampling.

These answer "what does the code space look like?": how many directions carry the variance,
whether classes form clusters in 2-D, and what the decoder makes of points between (or
drawn around) the encoded data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from replab.data import Normalizer
from replab.evaluation.embed import batched_eval
from replab.io import import_limited
from replab.spec import AnalysisSpec


@dataclass
class PCAResult:
    """Principal directions of a latent set, with variance ratios relative to the TOTAL variance.

    Ratios are fractions of all the variance even when ``components`` is truncated, so the
    curve means the same thing whatever ``n_components`` was asked for.
    """

    explained_variance_ratio: np.ndarray  # (k,)
    components: np.ndarray  # (k, d), unit rows
    mean: np.ndarray  # (d,)
    projection: np.ndarray  # (n, 2): the data on the first two components

    @property
    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.explained_variance_ratio)

    def components_for(self, fraction: float) -> int:
        """Fewest components whose cumulative ratio reaches ``fraction``
        (all of them if none does)."""
        reached = np.nonzero(self.cumulative >= fraction - 1e-9)[0]
        return int(reached[0]) + 1 if len(reached) else len(self.explained_variance_ratio)


def pca(z, n_components: int | None = None) -> PCAResult:
    """PCA by SVD of the centred latents in float64 (signs fixed so reruns give the same axes)."""
    x = _as_float64(z)
    mean = x.mean(0)
    centred = x - mean
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    # Largest-magnitude loading of each component positive: a deterministic sign, as sklearn does.
    signs = torch.sign(vh.gather(1, vh.abs().argmax(1, keepdim=True))).clamp_min(0) * 2 - 1
    vh = vh * signs
    variance = s.pow(2)
    total = variance.sum().clamp_min(1e-300)
    k = len(s) if n_components is None else min(n_components, len(s))
    return PCAResult(
        explained_variance_ratio=(variance[:k] / total).numpy(),
        components=vh[:k].numpy(),
        mean=mean.numpy(),
        projection=(centred @ vh[:2].T).numpy(),
    )


def stratified_sample(y, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` points keeping each class's share (largest-remainder rounding).

    Plots and O(n^2) scores run on a sample; stratifying keeps rare classes visible and makes
    the sample the same for every encoder compared on one dataset.
    """
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    quota = np.floor(exact).astype(int)
    quota[np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [
        rng.permutation(np.flatnonzero(labels == c))[:q]
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def tsne_threads() -> int:
    """openTSNE's thread count for this process: 1 when torch has one thread (a ``--jobs``
    worker, a run sharing the machine, ``--threads 1``), else 2.

    Two counts only, because openTSNE's map of a few thousand points depends on its thread
    count (2,500 points, 1 vs 2 threads: different maps): the map of a run follows from the
    thread count its summary records, not from the host's core count. One thread when the
    run has one, because two 2-thread maps on 2 cores wait on each other at every step of
    the optimisation (measured: 20.4 s each against 5.5 s alone, and 9 s each with 1 thread).
    """
    return 1 if torch.get_num_threads() == 1 else 2


# t-SNE's early-exaggeration iterations, then its normal ones, when a caller does not say:
# the analysis spec's default (the reason for it is beside it, in replab/spec.py)
TSNE_ITERATIONS: tuple[int, int] = AnalysisSpec.model_fields["tsne_iterations"].default


# Up to this many points t-SNE's neighbours are found exactly (scikit-learn, brute force)
# rather than by openTSNE's approximate index, which is slower here: its perplexity affinities
# took 0.31 s against annoy's 0.74 s for 2,500 MNIST test images, 2.18 s against 5.37 s for
# 10,000, and 0.10 s against 0.53 s for 2,500 128-d latents (2 threads, 2026-12-02).
EXACT_NEIGHBOURS = 10_000


def tsne_2d(
    z,
    seed: int = 0,
    n_jobs: int | None = None,
    perplexity: float = 30.0,
    iterations: tuple[int, int] = TSNE_ITERATIONS,
) -> np.ndarray:
    """2-D openTSNE embedding (PCA initialisation, seeded): an (n, 2) float array.

    Cost grows with n (about 4 s for 2,500 MNIST images on 2 cores), so callers pass a
    sample; see ``stratified_sample``. Neighbours are exact up to ``EXACT_NEIGHBOURS`` points.
    Perplexity is capped for tiny inputs, where openTSNE would otherwise refuse. ``n_jobs``
    defaults to :func:`tsne_threads`; ``iterations`` are the early-exaggeration and the
    normal ones.
    """
    TSNE = import_limited("openTSNE").TSNE  # here: only t-SNE figures pay its import
    x = _as_float64(z).numpy()
    perplexity = min(perplexity, max((len(x) - 1) / 3, 1.0))
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        initialization="pca",
        random_state=seed,
        n_jobs=tsne_threads() if n_jobs is None else n_jobs,
        early_exaggeration_iter=iterations[0],
        n_iter=iterations[1],
        neighbors="exact" if len(x) <= EXACT_NEIGHBOURS else "auto",
        verbose=False,
    )
    return np.asarray(tsne.fit(x), dtype=np.float64)


def decode(
    decoder: nn.Module,
    z: torch.Tensor,
    normalizer: Normalizer | None = None,
    batch_size: int = 4096,
) -> torch.Tensor:
    """Decoder output for latents ``z`` (N, d), on the CPU as float.

    Runs in eval mode under inference mode on the decoder's device. With ``normalizer``
    the output is mapped back to [0, 1] pixels (as ``reconstruct`` does); without it the
    raw decoder output is returned.
    """
    device = next((p.device for p in decoder.parameters()), z.device)
    images = batched_eval(decoder, z, batch_size, lambda b: decoder(b.to(device)).float())
    if normalizer is not None:
        images = normalizer.invert(images).clamp(0, 1)
    return images.cpu()


def interpolate(
    decoder: nn.Module,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    steps: int = 10,
    normalizer: Normalizer | None = None,
) -> torch.Tensor:
    """``steps`` decoded images along the straight line z_a -> z_b, both endpoints included."""
    z_a, z_b = z_a.reshape(1, -1).float(), z_b.reshape(1, -1).float()
    t = torch.linspace(0, 1, steps, device=z_a.device).unsqueeze(1)
    return decode(decoder, (1 - t) * z_a + t * z_b.to(z_a.device), normalizer)


def traversal_grid(
    decoder: nn.Module, z4: torch.Tensor, steps: int = 8, normalizer: Normalizer | None = None
) -> torch.Tensor:
    """(steps, steps, *image) grid bilinear between four corner latents.

    ``z4`` rows are the top-left, top-right, bottom-left and bottom-right corners; row i and
    column j of the grid decode the latent at fractions (i, j) / (steps - 1) between them.
    """
    tl, tr, bl, br = z4.reshape(4, -1).float()
    u = torch.linspace(0, 1, steps, device=tl.device).view(steps, 1, 1)  # down the rows
    v = torch.linspace(0, 1, steps, device=tl.device).view(1, steps, 1)  # across the columns
    grid = (1 - u) * (1 - v) * tl + (1 - u) * v * tr + u * (1 - v) * bl + u * v * br
    images = decode(decoder, grid.reshape(steps * steps, -1), normalizer)
    return images.reshape(steps, steps, *images.shape[1:])


def sample_latents(z, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws from a Gaussian with the latents' mean and full covariance (float32, CPU).

    A plain autoencoder has no prior; this fitted Gaussian is the simplest stand-in, and
    its samples show how much of the decoder's output space the code distribution covers.
    A square root by eigendecomposition tolerates singular covariances (dead dimensions).
    """
    x = _as_float64(z)
    mean = x.mean(0)
    cov = torch.atleast_2d(torch.cov(x.T))
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    root = eigenvectors * eigenvalues.clamp_min(0).sqrt()
    noise = torch.randn(
        n, len(mean), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return (mean + noise @ root.T).float()


def sample_prior(dim: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` standard-normal latents of size ``dim``: the prior a VAE
    decoder was trained against."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _as_float64(z) -> torch.Tensor:
    tensor = z.detach().cpu() if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z))
    return tensor.reshape(len(tensor), -1).double()


def pca_reconstruction_mse(result: PCAResult, x) -> np.ndarray:
    """Mean squared error per element of ``x`` rebuilt from its first k components, for k = 1..K.

    PCA's counterpart of an autoencoder's reconstruction loss at bottleneck k (study B2).
    """
    centred = _as_float64(x) - torch.from_numpy(result.mean)
    coords = centred @ torch.from_numpy(result.components).T
    total = centred.pow(2).sum()
    kept = coords.pow(2).sum(0).cumsum(0)
    return ((total - kept) / centred.numel()).clamp_min(0).numpy()
