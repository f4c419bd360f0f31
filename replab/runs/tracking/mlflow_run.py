"""One MLflow run through ``MlflowClient``: no global ``mlflow.start_run`` state, so the runs
of a sweep in one process never mix. mlflow is imported only here, and only when used."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from replab.io import atomic_write_json

# MLflow retries a failed request 7 times with exponential back-off (minutes against a server
# that is down); a tracker may cost a run a few seconds, not that. A user's own setting wins.
BOUNDED_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PARAM_CHARS = 6000  # MLflow's longest parameter value
BATCH = 100  # MLflow's most parameters per log_batch call


def connect(uri: str, experiment: str):
    """A client for ``uri`` and the id of ``experiment`` there (created if new)."""
    for key, value in BOUNDED_RETRIES.items():
        os.environ.setdefault(key, value)
    check_reachable(uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return client, client.create_experiment(experiment)
        except Exception:  # another process created it meanwhile
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
    return client, found.experiment_id


def check_reachable(uri: str) -> None:
    """A server that is down refuses at once, before MLflow's retries start."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with socket.create_connection((parsed.hostname, port), timeout=5):
        pass


def create_run(client, experiment_id: str, name: str, tags: dict, parent_id: str | None) -> str:
    tags = {**tags, **({"mlflow.parentRunId": parent_id} if parent_id else {})}
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def log_params(client, run_id: str, flat: dict) -> None:
    from mlflow.entities import Param

    params = [Param(k, _text(v)[:PARAM_CHARS]) for k, v in flat.items()]
    for i in range(0, len(params), BATCH):
        client.log_batch(run_id, params=params[i : i + BATCH])


def log_metrics(client, run_id: str, metrics: dict, step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [
        Metric(k, float(v), now, step)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    for i in range(0, len(batch), BATCH * 10):
        client.log_batch(run_id, metrics=batch[i : i + BATCH * 10])


def read_ids(folder: Path, file: str) -> dict[str, str]:
    """The MLflow run ids a folder has had, by tracking URI ({} where none)."""
    try:
        data = json.loads((Path(folder) / file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def remember_id(folder: Path, file: str, uri: str, run_id: str) -> None:
    atomic_write_json(Path(folder) / file, {**read_ids(folder, file), uri: run_id})


def status_of(err: BaseException | None) -> str:
    """MLflow's end state for a run that ended with ``err`` (None: finished)."""
    if err is None:
        return "FINISHED"
    if isinstance(err, KeyboardInterrupt) or isinstance(getattr(err, "run_state", None), str):
        return "KILLED"  # Ctrl-C, or a pruned tune trial
    return "FAILED"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)
