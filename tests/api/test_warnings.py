"""What the Python API tells its caller (issue 34, point 2): warnings the user must see through
Python's ``warnings`` (a ReplabWarning a notebook shows), kept in the run's summary.json; the
progress lines through the ``replab`` logger, which is silent (a NullHandler) by default."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import replab
from replab.errors import ReplabWarning
from tests.data.test_own_data import digits, write_tree
from tests.tracking.conftest import closed_port

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
TINY = ["trainer.epochs=1", "probe.enabled=false", "analysis.enabled=false"]


def test_a_failing_mlflow_server_is_a_warning_the_summary_keeps(tmp_path):
    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.warns(ReplabWarning, match="MLflow failed") as caught:
        run = replab.run(
            "digits-autoencoder",
            *TINY,
            "tracking.tensorboard=false",
            f"tracking.mlflow={uri}",
            runs_dir=tmp_path,
        )
    assert run is not None and run.summary["state"] == "finished"
    said = [str(w.message) for w in caught if issubclass(w.category, ReplabWarning)]
    kept = json.loads((run.dir / "summary.json").read_text())["warnings"]
    assert kept == said and "the run goes on without it" in kept[0]


def test_skipped_images_are_a_warning_the_summary_keeps(tmp_path):
    x, y = digits()
    root = write_tree(tmp_path / "images", x[:120], y[:120])
    for name in ("a.png", "b.png"):
        (root / "class3" / name).write_bytes(b"not an image")
    with pytest.warns(ReplabWarning, match="skipped 2 unreadable image"):
        run = replab.run(
            "digits-autoencoder",
            *TINY,
            "data.dataset=image_folder",
            f"data.root={root}",
            "data.skip_corrupt=true",
            runs_dir=tmp_path / "runs",
        )
    assert run is not None
    (kept,) = run.summary["warnings"]
    assert "skipped 2 unreadable image(s)" in kept and "a.png" in kept


def test_progress_goes_to_the_replab_logger_silent_by_default(tmp_path, caplog):
    logger = logging.getLogger("replab")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    with caplog.at_level(logging.INFO, logger="replab"):
        run = replab.run("digits-autoencoder", *TINY, runs_dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "replab"]
    assert any(line.startswith("data:") for line in lines), lines
    assert any("trained 1 epochs" in line or "epoch" in line for line in lines), lines
    assert run is not None and "warnings" not in run.summary  # a clean run has none


def test_the_same_warning_shows_again_in_the_next_run():
    """Python shows a repeated warning once per place by default: a notebook's second run
    against the same dead server would say nothing. replab's own show every time. A process
    of its own: pytest replaces the warning filters inside each test."""
    code = (
        "import replab\n"
        "from replab.io import warn\n"
        "for _ in range(2):\n"
        "    warn('MLflow failed (ConnectionError: refused); the run goes on without it')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("ReplabWarning: MLflow failed") == 2, done.stderr


def test_runs_in_worker_processes_warn_through_the_parent(tmp_path):
    """--jobs 2: each run's warning comes back with its summary and is issued by the parent,
    named by the run (the worker's own stderr stays quiet)."""
    uri = f"http://127.0.0.1:{closed_port()}"
    with pytest.warns(ReplabWarning) as caught:
        result = replab.sweep(
            "digits-autoencoder",
            ["model.encoder.latent_dim=[2,4]"],
            *TINY,
            "tracking.tensorboard=false",
            f"tracking.mlflow={uri}",
            runs_dir=tmp_path,
            jobs=2,
        )
    said = [str(w.message) for w in caught if issubclass(w.category, ReplabWarning)]
    per_run = [m for m in said if "MLflow failed" in m and "latent_dim" in m]
    assert len(per_run) == 2, said
    assert len(result.table) == 2
