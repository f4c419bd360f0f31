"""The report in a real headless browser: loads with no console errors, every figure decodes.

Needs Debian's chromium (`apt-get install chromium`; .ci/run installs it). A screenshot is
kept in test-artifacts/report.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from replab.cli import main

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip(
        "no headless Chromium on this machine: "
        "install Debian's package with `apt-get install chromium` (.ci/run does)"
    )


def browse(
    report: Path, profile: Path, *args: str, fragment: str = ""
) -> subprocess.CompletedProcess:
    cmd = [
        chromium(),
        *FLAGS,
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *args,
        report.as_uri() + fragment,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert main(["run", "trainer.epochs=3", "probe.trainer.epochs=3", "--runs-dir", str(runs)]) == 0
    (run,) = runs.iterdir()
    return run / "report.html"


def test_report_loads_cleanly_with_every_figure(report, tmp_path):
    proc = browse(report, tmp_path / "profile", "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    console_errors = [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)
    ]
    assert console_errors == []
    figures = int(re.search(r'data-figures="(\d+)"', proc.stdout).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', proc.stdout).group(1))
    expected = len(json.loads((report.parent / "summary.json").read_text())["figures"])
    assert figures == expected >= 3
    assert loaded == figures


def test_hovering_the_latent_map_shows_the_image(report, tmp_path):
    proc = browse(report, tmp_path / "profile", "--dump-dom", fragment="#selftest")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-hover-shown="block"' in proc.stdout
    label = re.search(r'data-hover-label="class (\w+)"', proc.stdout)
    assert label and label.group(1) in {str(i) for i in range(10)}


def test_report_screenshot_is_kept(report, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = browse(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2400")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a page with figures, not a blank one
