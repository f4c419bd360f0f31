"""`make setup` takes torch and torchvision from another wheel index when asked (CPU-only
machines), at the versions pyproject.toml pins; without it, plain PyPI as before."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CPU = "https://download.pytorch.org/whl/cpu"


def dry_setup(tmp_path: Path, *variables: str) -> str:
    """The commands `make setup` would run for a fresh venv (nothing is run or downloaded)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    command = ["make", "-n", "-B", "setup", f"VENV={tmp_path / 'venv'}", *variables]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout


def pinned() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    return set(re.findall(r'"(torch(?:vision)?==[0-9.]+)"', text))


def test_the_torch_index_passes_through_with_the_pinned_versions(tmp_path):
    for variables in (["TORCH_INDEX=cpu"], [f"TORCH_INDEX_URL={CPU}"]):
        out = dry_setup(tmp_path, *variables)
        (line,) = [x for x in out.splitlines() if "--index-url" in x]
        assert line.endswith(f"--index-url {CPU}")
        assert set(re.findall(r"torch(?:vision)?==[0-9.]+", line)) == pinned() != set()
        assert out.index("--index-url") < out.index("-e '.[dev]'")  # torch first, then replab


def test_by_default_everything_comes_from_the_usual_index(tmp_path):
    out = dry_setup(tmp_path)
    assert "--index-url" not in out and "-e '.[dev]'" in out
