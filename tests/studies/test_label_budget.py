"""A study's answer by label budget, from runs' recorded curves: curves over seeds and draws,
the leader over each range of budgets, and leads compared paired (same seed, same draw)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from replab.studies.framework import Part
from replab.studies.label_budget import (
    TEXT,
    budget_chart,
    budget_of,
    budget_rows,
    by_budget,
)


def part(key: str, curves_by_seed: dict[int, dict[str, list[float]]], pixels=None) -> Part:
    summaries = []
    for seed, linear in curves_by_seed.items():
        curves = {"shots": [1, 10], "draws": 2, "linear": linear, "linear.full": 0.9}
        if pixels is not None:
            curves["image.linear"] = pixels[seed]
        summaries.append({"seed": seed, "label_efficiency": curves, "metrics": {}})
    return Part(key, key, [], summaries, {})


PIXELS = {0: {"1": [0.30, 0.34], "10": [0.80, 0.82]}, 1: {"1": [0.31, 0.33], "10": [0.81, 0.80]}}
SSL = part(
    "SSL",
    {0: {"1": [0.50, 0.40], "10": [0.70, 0.72]}, 1: {"1": [0.45, 0.47], "10": [0.71, 0.69]}},
    PIXELS,
)
AE = part(
    "AE", {0: {"1": [0.20, 0.52], "10": [0.79, 0.78]}, 1: {"1": [0.20, 0.25], "10": [0.78, 0.77]}}
)


def test_curves_over_seeds_and_draws():
    b = budget_of("SSL", SSL)
    assert b is not None and b.seeds == [0, 1] and b.shots == [1, 10]
    assert b.draws[1] == [0.50, 0.40, 0.45, 0.47]
    assert b.mean(1) == pytest.approx(0.455) and b.full_runs == [0.9, 0.9]
    # one area per (seed, draw): two points on a log axis average to their midpoint
    assert b.aucs == pytest.approx([0.6, 0.56, 0.58, 0.58])
    pixels = budget_of("pixels", SSL, pixels=True)
    assert pixels is not None and pixels.baseline and pixels.draws[10] == [0.80, 0.82, 0.81, 0.80]
    assert budget_of("none", part("none", {})) is None


def test_the_leader_by_budget_and_the_paired_lead():
    budgets = [budget_of("pixels", SSL, pixels=True), budget_of("SSL", SSL), budget_of("AE", AE)]
    text = by_budget([b for b in budgets if b is not None], TEXT)
    assert (
        text[0]
        == "By label budget, the best latent space (or the raw pixels): SSL at 1; pixels at 10."
    )
    at1, at10 = text[1], text[2]
    # SSL leads the pixels at 1: differences 0.20, 0.06, 0.14, 0.14, each pair won
    diff = np.array([0.20, 0.06, 0.14, 0.14])
    assert f"ahead of pixels by {diff.mean():.3f}" in at1 and "SSL wins 4" in at1
    assert f"std {diff.std():.3f}" in at1 and "the lead exceeds the spread" in at1
    # the pixels lead AE at 10: differences 0.01, 0.04, 0.03, 0.03, each pair won
    assert at10.startswith("At 10: pixels 0.808, ahead of AE by") and "wins 4" in at10
    gap = float(re.search(r"ahead of AE by ([\d.]+)", at10).group(1))  # type: ignore[union-attr]
    assert gap == pytest.approx(np.mean([0.01, 0.04, 0.03, 0.03]), abs=1e-3)


def test_a_lead_within_the_spread_is_not_settled():
    a = part("A", {0: {"1": [0.5, 0.3], "10": [0.8, 0.8]}})
    b = part("B", {0: {"1": [0.3, 0.4], "10": [0.7, 0.9]}})
    text = by_budget([budget_of("A", a), budget_of("B", b)], TEXT)  # type: ignore[list-item]
    assert "within the spread, not settled" in text[1]
    assert "One training seed" in text[-1]


def test_a_method_trained_on_labels_is_shown_but_never_leads():
    sup = budget_of("SUP", part("SUP", {0: {"1": [0.9, 0.9], "10": [0.95, 0.95]}}), labels=True)
    ssl = budget_of("SSL", SSL)
    assert sup is not None and ssl is not None
    assert "SSL at 1 to 10" not in by_budget([sup, ssl], TEXT)[0]
    assert by_budget([sup, ssl], TEXT)[0].endswith("SSL from 1 to 10 labels per class.")
    header, body = budget_rows([sup, ssl], (1, 5, 10))
    assert header[1:4] == ["1 / class", "5 / class", "10 / class"]
    assert body[0][1] == "0.900 ± 0.000" and body[1][2] == "—"
    assert budget_chart([sup, ssl], "t")[:4] == b"\x89PNG"
