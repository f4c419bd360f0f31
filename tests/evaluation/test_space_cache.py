"""The image space's map and scores are computed once per test set and read back after."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.data import ImageSet
from replab.evaluation import analysis
from replab.evaluation.analysis import analyse
from replab.spec import AnalysisSpec


def digits_like(n=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = (torch.rand(n, 1, 6, 6, generator=g) * 60 + labels.view(-1, 1, 1, 1) * 60).to(
        torch.uint8
    )
    return ImageSet(images, labels, ["a", "b", "c"])


@pytest.fixture
def counted_tsne(monkeypatch):
    calls = []
    real = analysis.tsne_2d

    def counting(z, **kw):
        calls.append(len(z))
        return real(z, **kw)

    monkeypatch.setattr(analysis, "tsne_2d", counting)
    return calls


def image_space(result):
    return next(s for s in result.spaces if s.name == "image space")


def test_second_run_reads_the_image_space_back(tmp_path, counted_tsne):
    test = digits_like()
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    spec = AnalysisSpec(tsne_sample=None)
    first = analyse(test, z, spec, cache=tmp_path)
    assert len(counted_tsne) == 2  # pixels and latents
    second = analyse(test, z * 2, spec, cache=tmp_path)
    assert len(counted_tsne) == 3  # only the latents again
    a, b = image_space(first), image_space(second)
    np.testing.assert_array_equal(a.points, b.points)
    assert a.scores == b.scores and a.scores.effective_rank is not None
    assert any("(cached)" in k for k in second.seconds)


@pytest.mark.parametrize(
    "change",
    [
        {"knn_k": 3},
        {"knn_metric": "euclidean"},
        {"tsne_sample": 60},
        {"tsne_iterations": (50, 100)},
    ],
)
def test_a_different_setting_is_a_different_entry(tmp_path, counted_tsne, change):
    test = digits_like()
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    analyse(test, z, AnalysisSpec(tsne_sample=None), cache=tmp_path)
    analyse(test, z, AnalysisSpec(**{"tsne_sample": None, **change}), cache=tmp_path)
    assert len(counted_tsne) == 4 and len(list(tmp_path.glob("*.npz"))) == 2


def test_a_map_is_not_read_back_by_a_run_without_t_sne_or_the_reverse(tmp_path, counted_tsne):
    test = digits_like()
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    without = analyse(test, z, AnalysisSpec(tsne_sample=None, tsne=False), cache=tmp_path)
    with_map = analyse(test, z, AnalysisSpec(tsne_sample=None), cache=tmp_path)
    assert image_space(without).points is None and image_space(with_map).points is not None
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_other_pixels_or_seed_miss_and_a_broken_file_is_recomputed(tmp_path, counted_tsne):
    spec = AnalysisSpec(tsne_sample=None, tsne=False)
    z = torch.randn(150, 5, generator=torch.Generator().manual_seed(1))
    first = analyse(digits_like(seed=0), z, spec, cache=tmp_path)
    analyse(digits_like(seed=1), z, spec, cache=tmp_path)  # one pixel differs: a new entry
    analyse(digits_like(seed=0), z, spec, seed=1, cache=tmp_path)
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 3
    for f in files:
        f.write_bytes(b"not an npz")
    again = analyse(digits_like(seed=0), z, spec, cache=tmp_path)
    assert image_space(again).scores == image_space(first).scores  # recomputed
    readable = [f for f in files if f.read_bytes()[:2] == b"PK"]  # rewritten as an npz again
    assert len(readable) == 1
    assert counted_tsne == []  # t-SNE off: only the scores were cached


def test_one_entry_whatever_the_runs_thread_count(tmp_path, counted_tsne):
    """openTSNE's map depends on its thread count; the image space always takes one, so runs
    with one or two threads share its entry (the latent space follows the run's count)."""
    test = digits_like()
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        analyse(test, z, AnalysisSpec(tsne_sample=None), cache=tmp_path)
        torch.set_num_threads(1)
        analyse(test, z, AnalysisSpec(tsne_sample=None), cache=tmp_path)
    finally:
        torch.set_num_threads(before)
    assert len(counted_tsne) == 3 and len(list(tmp_path.glob("*.npz"))) == 1
