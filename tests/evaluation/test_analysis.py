"""A 2-D latent is drawn as it is, before and after training; other latents go through t-SNE."""

from __future__ import annotations

import numpy as np
import torch

from replab.data import ImageSet
from replab.evaluation.analysis import SPACES, analyse
from replab.reporting.latent_figures import PLANE_FIGURE, TSNE_FIGURE, analysis_figures
from replab.spec import AnalysisSpec


def blobs(n=120, dim=2, spread=0.1):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[0.0] * dim, [3.0] * dim, [-3.0, *[3.0] * (dim - 1)]])
    return centres[labels] + spread * torch.randn(n, dim, generator=g), labels


def test_two_dimensional_latents_are_plotted_directly_with_the_untrained_ones_beside():
    z, labels = blobs()
    z0 = torch.randn(len(z), 2, generator=torch.Generator().manual_seed(1))
    test = ImageSet(torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"])
    spec = AnalysisSpec(image_space=False, tsne_sample=None, knn_metric="euclidean")
    result = analyse(test, z, spec, z_initial=z0)
    before, after = result.spaces
    assert [before.name, after.name] == ["latent space before training", "latent space"] and set(
        SPACES
    ) >= {before.name}
    assert before.direct and after.direct
    np.testing.assert_array_equal(after.points, z[result.index].numpy())
    assert after.scores.trustworthiness is None  # a plane mapped to itself has nothing to score
    assert after.scores.knn_accuracy == 1.0 and before.scores.knn_accuracy < 0.7
    figs = analysis_figures(result, test.classes)
    assert PLANE_FIGURE in figs and TSNE_FIGURE not in figs


def test_wider_latents_still_go_through_tsne():
    z, labels = blobs(dim=5)
    test = ImageSet(torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"])
    result = analyse(test, z, AnalysisSpec(image_space=False, tsne_sample=None))
    (latent,) = result.spaces
    assert not latent.direct and latent.scores.trustworthiness is not None
    assert TSNE_FIGURE in analysis_figures(result, test.classes)


def test_the_specs_t_sne_iterations_reach_every_map(monkeypatch):
    from replab.evaluation import analysis

    asked = []
    real = analysis.tsne_2d

    def recording(z, **kw):
        asked.append(kw["iterations"])
        return real(z, **kw)

    monkeypatch.setattr(analysis, "tsne_2d", recording)
    z, labels = blobs(dim=5)
    test = ImageSet(torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"])
    spec = AnalysisSpec(image_space=False, tsne_sample=None, tsne_iterations=(20, 30))
    analyse(test, z, spec)
    assert asked == [(20, 30)]
