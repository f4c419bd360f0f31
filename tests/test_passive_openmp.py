"""scikit-learn's and openTSNE's OpenMP runtime loads passive, torch's keeps its own policy.

libgomp prints its settings at load under OMP_DISPLAY_ENV=VERBOSE: GOMP_SPINCOUNT is 0 when
its threads sleep at once (passive) and 300000 by default. The child imports torch first, as
every replab process does, then what replab imports when it scores or maps a space."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

CHILD = """
import os, torch
from replab.io import import_passive
before = os.environ.get("OMP_WAIT_POLICY")
import_passive("{module}")
assert os.environ.get("OMP_WAIT_POLICY") == before  # set only while it loaded
"""


def spin_counts(module: str, **env: str) -> list[int]:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ.update(OMP_DISPLAY_ENV="VERBOSE", PYTHONPATH=str(REPO), **env)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [int(n) for n in re.findall(r"GOMP_SPINCOUNT = '(\d+)'", proc.stderr)]


@pytest.mark.parametrize("module", ["sklearn.metrics", "openTSNE"])
def test_the_second_runtime_loads_passive_and_torchs_does_not(module):
    counts = spin_counts(module)
    assert len(counts) == 2, counts  # torch's runtime, then the one the module brought
    torch_runtime, loaded = counts
    assert torch_runtime > 0 and loaded == 0


def test_a_users_own_policy_is_kept():
    assert spin_counts("sklearn.metrics", OMP_WAIT_POLICY="ACTIVE") == [30_000_000_000] * 2
