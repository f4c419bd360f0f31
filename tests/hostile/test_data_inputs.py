"""Hostile data (issue 30): images that decode to their values whatever their mode, own folders
walked without leaving them, memory bounded by what a file declares, and user strings drawn
in figures as they are. Each refusal is one clear ReplabError naming the file and the fix."""

from __future__ import annotations

import pytest
import torch

from replab.reporting import figures

# --- C: user strings in figures are drawn as text, never as mathtext ---------------------------

HOSTILE_NAMES = ["a$b$c", "$\\frac{$", "$\\frac{", "$", "plain"]


def test_plain_escapes_every_dollar_so_matplotlib_draws_the_text_as_it_is():
    from matplotlib.text import Text

    for name in HOSTILE_NAMES:
        text, math = Text()._preprocess_math(figures.plain(name))
        assert (text, math) == (name, False)


def test_figures_with_dollar_class_names_and_titles_render():
    n = len(HOSTILE_NAMES)
    matrix = [[int(i == j) for j in range(n)] for i in range(n)]
    assert figures.confusion(matrix, HOSTILE_NAMES).startswith(b"\x89PNG")
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}]
    assert figures.curves(history, title="$\\frac{$").startswith(b"\x89PNG")
    grid = figures.image_grid([torch.rand(2, 1, 4, 4)], ["$\\frac{$"], title="a$b$c")
    assert grid.startswith(b"\x89PNG")
    sweep = figures.sweep_plot({"$\\frac{": [("a$b$c", 1.0), ("$", 2.0)]}, "$x$", "$\\frac{$")
    assert sweep.startswith(b"\x89PNG")


def test_the_same_names_unescaped_are_what_broke():
    """The hazard is real: matplotlib parses a raw name with two dollars as maths, draws
    ``a$b$c`` as italic ``abc`` and fails the whole figure on ``$\\frac{$``."""
    from matplotlib.text import Text

    assert Text()._preprocess_math("a$b$c")[1] is True
    fig, ax = figures.plt.subplots()
    ax.set_xticks([0], ["$\\frac{$"])
    with pytest.raises(ValueError):
        figures.to_png(fig)
