"""The effective rank against a NumPy reference written from the formula (centred latents)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.evaluation.rank import effective_rank
from replab.evaluation.separability import separability


def reference(z: np.ndarray, eps: float = 1e-7) -> float:
    z = z.astype(np.float64)
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
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


def test_bounds_full_rank_line_and_collapse():
    # +-1 on each axis: centred, every direction carries the same spread
    axes = torch.cat([torch.eye(12), -torch.eye(12)])
    assert effective_rank(axes) == pytest.approx(12, rel=1e-5)
    g = torch.Generator().manual_seed(4)
    line = torch.randn(100, 1, generator=g) * torch.randn(1, 32, generator=g) + 5.0
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-4)  # all on one line
    collapsed = torch.ones(100, 32) * torch.randn(32, generator=g)  # every latent the same
    assert effective_rank(collapsed) == 0.0
    assert effective_rank(torch.zeros(10, 4)) == 0.0


def test_a_shared_offset_is_not_a_collapse():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(200, 8, generator=g)
    assert effective_rank(z + 100.0) == pytest.approx(effective_rank(z), rel=1e-6)


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
