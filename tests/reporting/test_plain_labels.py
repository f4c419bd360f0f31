"""User strings drawn by the latent and search figures are text, never mathtext: a class named
``a$b$c`` would draw as maths and one named ``$\\frac{$`` would fail the whole figure."""

from __future__ import annotations

import matplotlib.text
import numpy as np
import pytest
import torch

from replab.data import ImageSet
from replab.evaluation.analysis import analyse
from replab.evaluation.separability import Separability
from replab.reporting import figures, latent_figures, tune_report
from replab.reporting.figures import plain
from replab.reporting.latent_figures import (
    PLANE_FIGURE,
    TSNE_FIGURE,
    analysis_figures,
    hover_map,
    tsne_maps,
    tsne_points,
)
from replab.spec import AnalysisSpec

CLASSES = ["a$b$c", "$\\frac{$", "plain"]
PNG = b"\x89PNG"


def blobs(n=90, dim=5):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[0.0] * dim, [3.0] * dim, [-3.0, *[3.0] * (dim - 1)]])
    return centres[labels] + 0.1 * torch.randn(n, dim, generator=g), labels


def analysed(dim: int):
    z, labels = blobs(dim=dim)
    test = ImageSet(torch.zeros(len(z), 1, 2, 2, dtype=torch.uint8), labels, list(CLASSES))
    spec = AnalysisSpec(image_space=False, tsne_sample=None, tsne_iterations=(20, 30))
    z0 = torch.randn(len(z), dim, generator=torch.Generator().manual_seed(1))
    return test, analyse(test, z, spec, z_initial=z0 if dim == 2 else None)


@pytest.fixture
def drawn(monkeypatch):
    """Every figure the module saves: its texts as matplotlib holds them before rendering."""
    seen: list[dict] = []
    real = figures.to_png

    def recording(fig) -> bytes:
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        legends = [leg for ax in fig.axes if (leg := ax.get_legend())] + list(fig.legends)
        names = [t.get_text() for leg in legends for t in leg.get_texts()]
        ticks = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
        seen.append({"texts": texts, "legend": names, "yticks": ticks})
        return real(fig)

    monkeypatch.setattr(latent_figures, "to_png", recording)
    monkeypatch.setattr(tune_report, "to_png", recording)
    return seen


def no_mathtext(texts: list[str]) -> None:
    for text in texts:
        _, math = matplotlib.text.Text()._preprocess_math(text)
        assert not math, text


@pytest.mark.parametrize("dim", [5, 2])
def test_latent_figures_draw_dollar_class_names_as_text(drawn, dim):
    test, result = analysed(dim)
    figs = analysis_figures(result, test.classes)
    assert (TSNE_FIGURE if dim == 5 else PLANE_FIGURE) in figs
    assert all(png.startswith(PNG) for png in figs.values())
    legends = [d["legend"] for d in drawn if d["legend"]]
    assert legends  # the t-SNE (or plane) map, and with 5 dimensions the PCA scatter too
    assert len(legends) == (2 if dim == 5 else 1)
    for names in legends:
        assert names == [plain(c) for c in CLASSES] == ["a\\$b\\$c", "\\$\\frac{\\$", "plain"]
    for d in drawn:
        no_mathtext(d["texts"])


def test_a_map_title_from_user_data_is_text(drawn):
    points = np.random.default_rng(0).normal(size=(6, 2))
    scores = Separability(1.0, k=5, metric="cosine", silhouette=0.5, trustworthiness=None)
    png = tsne_maps([("run $\\frac{$ of a$b$c", points, scores)], np.arange(6) % 3, CLASSES)
    assert png.startswith(PNG)
    (d,) = drawn
    assert any(t.startswith("run \\$\\frac{\\$ of a\\$b\\$c\n") for t in d["texts"])
    no_mathtext(d["texts"])


def test_the_map_data_keeps_the_names_as_they_are():
    """The points and hover data are read by the HTML report, not matplotlib: unescaped."""
    test, result = analysed(5)
    maps = tsne_points(result, test.classes)
    assert maps is not None and maps["classes"] == CLASSES
    hover = hover_map(result, test.images, test.classes)
    assert hover is not None and hover["classes"] == CLASSES


def test_search_figures_draw_parameter_and_metric_names_as_text(drawn):
    rows = [
        {"number": i, "state": state, "value": v, "params": {}, "curve": [(1, v), (2, v / 2)]}
        for i, (state, v) in enumerate([("complete", 1.0), ("pruned", 2.0), ("complete", 0.5)])
    ]
    figs = tune_report.tune_figures(
        rows, "a$b$c", "$\\frac{$", "minimize", {"optim.$lr$": 0.7, "$\\frac{$": 0.3}, best=2
    )
    assert len(figs) == 3 and all(png.startswith(PNG) for png in figs.values())
    assert {"optim.\\$lr\\$", "\\$\\frac{\\$"} <= {t for d in drawn for t in d["yticks"]}
    for d in drawn:
        no_mathtext(d["texts"])
