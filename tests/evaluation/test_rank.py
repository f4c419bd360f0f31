"""RankMe effective rank against a NumPy reference written from the paper's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.evaluation.rank import effective_rank
from replab.evaluation.separability import separability


def reference(z: np.ndarray, eps: float = 1e-7) -> float:
    s = np.linalg.svd(z.astype(np.float64), compute_uv=False)
    p = s / s.sum() + eps
    return float(np.exp(-np.sum(p * np.log(p))))


@pytest.mark.parametrize("eps", [1e-7, 1e-3])
def test_matches_the_formula_on_random_latents(eps):
    z = torch.randn(300, 16, generator=torch.Generator().manual_seed(0)) @ torch.diag(
        torch.linspace(0.1, 3, 16)
    )
    assert effective_rank(z, eps) == pytest.approx(reference(z.numpy(), eps), rel=1e-9)


def test_eps_is_used():
    z = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    assert effective_rank(z, 1e-2) != pytest.approx(effective_rank(z), rel=1e-6)


def test_bounds_full_rank_and_collapse():
    assert effective_rank(torch.eye(12)) == pytest.approx(12, rel=1e-5)
    collapsed = torch.ones(100, 32) * torch.randn(32)  # every embedding the same point
    assert effective_rank(collapsed) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.zeros(10, 4)) == 0.0


def test_scale_free_and_device_dtype_free():
    z = torch.randn(64, 10, generator=torch.Generator().manual_seed(2))
    assert effective_rank(z * 1000) == pytest.approx(effective_rank(z), rel=1e-6)
    assert effective_rank(z.half()) == pytest.approx(effective_rank(z), rel=1e-2)


def test_rejects_non_matrices():
    with pytest.raises(ValueError, match="N×d"):
        effective_rank(torch.zeros(5))
    with pytest.raises(ValueError, match="N×d"):
        effective_rank(torch.zeros(0, 3))


def test_separability_reports_it():
    g = torch.Generator().manual_seed(3)
    z, y = torch.randn(200, 6, generator=g), torch.arange(200) % 4
    assert separability(z, y).effective_rank == pytest.approx(reference(z.numpy()), rel=1e-9)
