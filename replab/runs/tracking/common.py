"""What the trackers share: the MLflow URI a spec asks for, and failing softly."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from replab.io import warn
from replab.spec import TrackingSpec

TENSORBOARD_DIR = "tensorboard"
MLFLOW_JSON = "mlflow.json"  # the MLflow run a folder's run continues on resume


def mlflow_uri(spec: TrackingSpec) -> str | None:
    """``tracking.mlflow`` if given, else ``$MLFLOW_TRACKING_URI``; None: no MLflow."""
    if spec.mlflow is False:
        return None
    if isinstance(spec.mlflow, str):
        return spec.mlflow
    return os.environ.get("MLFLOW_TRACKING_URI") or None


class Soft:
    """Calls a tracker's methods, turning the first failure into one warning (``io.warn``:
    shown, and kept in summary.json) and switching the tracker off: a tracking server that
    goes away must not cost the training run."""

    def __init__(self, what: str) -> None:
        self.what, self.off = what, False

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.off:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # any client, network or disk error: tracking is optional
            self.off = True
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            warn(
                f"{self.what} failed ({type(err).__name__}: {first}); "
                "the run goes on without it, its folder holds every result"
            )
            return None


def relative_name(run_dir: Path, parent: Path | None) -> str:
    """``A1/seed0`` for a study part's run, the folder's name for a run on its own."""
    if parent is not None:
        try:
            return Path(run_dir).resolve().relative_to(Path(parent).resolve()).as_posix()
        except ValueError:
            pass
    return Path(run_dir).name
