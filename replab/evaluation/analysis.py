"""One call for the latent-space analysis a study report shows.

Image space and latent space are mapped the same way (the same stratified test sample,
the same t-SNE settings) and scored with the same separability figures, so "does the
encoder separate classes better than the pixels do?" is answered by numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from replab.data import ImageSet, Normalizer
from replab.evaluation import space_cache
from replab.evaluation.latent import (
    PCAResult,
    decode,
    interpolate,
    pca,
    sample_latents,
    sample_prior,
    stratified_sample,
    traversal_grid,
    tsne_2d,
)
from replab.evaluation.separability import Separability, separability
from replab.io import threads_set
from replab.spec import AnalysisSpec
from replab.training.trainer import progress


@dataclass
class SpaceMap:
    """One space (pixels or latents) of the test sample: its 2-D map and
    how well it separates classes."""

    name: str
    points: np.ndarray | None  # (n, 2) t-SNE map, None when t-SNE is off
    scores: Separability
    direct: bool = False  # points are the 2-D latent itself, not a t-SNE map of it


# The spaces an analysis scores, and the prefix of their metrics in a run's summary.
SPACES = {
    "image space": "image",
    "latent space before training": "initial",
    "latent space": "latent",
}


@dataclass
class LatentAnalysis:
    index: np.ndarray  # test-set rows in the sample that was mapped
    labels: np.ndarray
    spaces: list[SpaceMap]
    pca: PCAResult
    interpolation: torch.Tensor | None = None  # (steps, C, H, W)
    interpolation_labels: tuple[int, int] | None = None
    traversal: torch.Tensor | None = None  # (steps, steps, C, H, W)
    samples: torch.Tensor | None = None
    # samples decode N(0, I) draws (a VAE), not a Gaussian fitted to the latents
    samples_from_prior: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def analyse(
    test: ImageSet,
    z_test: torch.Tensor,
    spec: AnalysisSpec,
    decoder: nn.Module | None = None,
    normalizer: Normalizer | None = None,
    seed: int = 0,
    z_initial: torch.Tensor | None = None,
    prior: bool = False,
    cache: Path | None = None,
) -> LatentAnalysis:
    """Map and score the test set in image space, latent space and (given ``z_initial``, the
    untrained encoder's latents) the latent space before training. A 2-D latent is drawn as it
    is: t-SNE of a plane would only distort it. ``prior``: the decoder was trained against
    N(0, I) (a VAE), so random samples decode prior draws instead of a fitted Gaussian's.
    ``cache``: a folder where the image space's map and scores are kept for later runs on the
    same test set (``space_cache``)."""
    pixels = test.images.cpu().flatten(1).float().div(255)
    inputs = [("image space", pixels)] if spec.image_space else []
    before = [("latent space before training", z_initial.cpu())] if z_initial is not None else []
    todo = (*inputs, *before, ("latent space", z_test.cpu()))
    # t-SNE of thousands of points takes tens of seconds a map: a bar says where it is
    with progress(total=2 * len(todo) + (decoder is not None), desc="analysis") as bar:
        clock = _Clock(bar)
        return _analyse(test, z_test, spec, decoder, normalizer, seed, prior, todo, clock, cache)


def _analyse(
    test, z_test, spec, decoder, normalizer, seed, prior, todo, clock, cache=None
) -> LatentAnalysis:
    """``analyse`` over the spaces in ``todo``, each stage timed by ``clock``."""
    labels = test.labels.cpu()
    index = stratified_sample(labels, spec.tsne_sample or len(labels), seed)
    spaces = []
    for name, z in todo:
        if name == "image space" and z.shape[1] != 2:
            spaces.append(image_space(test.images, labels, spec, seed, cache, clock))
            continue
        direct = z.shape[1] == 2
        points, scores = _map_and_score(z, labels, index, spec, seed, direct, name, clock)
        spaces.append(SpaceMap(name, points, scores, direct))
    result = LatentAnalysis(index, labels[index].numpy(), spaces, pca(z_test.cpu()))
    if decoder is not None:
        _generate(result, test, z_test, spec, decoder, normalizer, seed, prior)
        clock.lap("decoding")
    result.seconds = clock.laps
    return result


# The image space is computed with one thread, whatever the run's share: openTSNE's map
# depends on its thread count, and with one count a run, its helper (image_ahead) and every
# later run on the test set all compute, and can share, the same map.
IMAGE_SPACE_THREADS = 1


def image_space_key(
    images: torch.Tensor, labels: torch.Tensor, spec: AnalysisSpec, seed: int
) -> tuple[np.ndarray, str]:
    """The image space's test sample (on the CPU), and its key in the space cache: a hash of
    everything its map and scores depend on."""
    index = stratified_sample(labels.cpu(), spec.tsne_sample or len(labels), seed)
    settings = {
        "k": spec.knn_k,
        "metric": spec.knn_metric,
        "tsne": spec.tsne,
        "tsne_iterations": list(spec.tsne_iterations),
        "seed": seed,
        "threads": IMAGE_SPACE_THREADS,
    }
    return index, space_cache.space_key(images, index, settings)


def image_space(
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: AnalysisSpec,
    seed: int,
    cache: Path | None,
    clock: _Clock | None = None,
) -> SpaceMap:
    """The test pixels' map and scores, read from the space cache in ``cache`` or computed
    (on the CPU with ``IMAGE_SPACE_THREADS``, whatever the device and the run's share) and
    kept there (no cache: computed). The analysis and the helper that computes it during
    training (``image_ahead``) both call this, so they give the same result."""
    clock = clock or _Clock()
    images, labels = images.cpu(), labels.cpu()
    index, key = image_space_key(images, labels, spec, seed)
    hit = space_cache.load(cache, key) if cache is not None else None
    if hit is not None:
        clock.lap("t-SNE image space (cached)")
        clock.lap("scores image space (cached)")
        return SpaceMap("image space", hit[0], hit[1])
    pixels = images.flatten(1).float().div(255)
    with threads_set(IMAGE_SPACE_THREADS):
        points, scores = _map_and_score(
            pixels, labels, index, spec, seed, False, "image space", clock
        )
    if cache is not None:
        space_cache.save(cache, key, points, scores)
    return SpaceMap("image space", points, scores)


def _map_and_score(
    z: torch.Tensor,
    labels: torch.Tensor,
    index: np.ndarray,
    spec: AnalysisSpec,
    seed: int,
    direct: bool,
    name: str,
    clock: _Clock,
) -> tuple[np.ndarray | None, Separability]:
    """One space's 2-D map (t-SNE of the sample, or the 2-D latent itself) and its scores."""
    points: np.ndarray | None
    mapped: np.ndarray | None
    if direct:
        points, mapped = z[index].float().numpy(), None
    else:
        points = mapped = (
            tsne_2d(z[index], seed=seed, iterations=spec.tsne_iterations) if spec.tsne else None
        )
    clock.lap(f"t-SNE {name}")
    # Every space is scored the same way (kNN on a seeded 80/20 split of the test set),
    # so their figures are comparable.
    scores = separability(
        z, labels, mapped, z2d_index=index, k=spec.knn_k, metric=spec.knn_metric, seed=seed
    )
    clock.lap(f"scores {name}")
    return points, scores


def _generate(
    result: LatentAnalysis,
    test: ImageSet,
    z_test,
    spec: AnalysisSpec,
    decoder,
    normalizer,
    seed: int,
    prior: bool = False,
) -> None:
    """Interpolation between the first test images of two labels, a traversal, random samples."""
    labels = test.labels.cpu()
    first = {int(c): int(torch.nonzero(labels == c)[0]) for c in torch.unique(labels)}
    a, b = spec.interpolate
    if a in first and b in first:
        result.interpolation = interpolate(
            decoder, z_test[first[a]], z_test[first[b]], spec.interpolation_steps, normalizer
        )
        result.interpolation_labels = (a, b)
    corners = [first[c] for c in sorted(first)[:4]]
    if len(corners) == 4:
        result.traversal = traversal_grid(
            decoder, z_test[corners], spec.traversal_steps, normalizer
        )
    if spec.n_samples:
        z = (
            sample_prior(z_test.shape[1], spec.n_samples, seed)
            if prior
            else sample_latents(z_test, spec.n_samples, seed)
        )
        result.samples = decode(decoder, z, normalizer)
        result.samples_from_prior = prior


class _Clock:
    def __init__(self, bar=None) -> None:
        self.last = time.perf_counter()
        self.laps: dict[str, float] = {}
        self.bar = bar

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"{name} done")
