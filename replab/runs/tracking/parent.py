"""The sweep, study or tune a run belongs to: one parent MLflow run over its runs, and the
study's own figures in its folder's event files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from replab.io import Log
from replab.runs.tracking import mlflow_run
from replab.runs.tracking.common import MLFLOW_JSON, TENSORBOARD_DIR, Soft
from replab.runs.tracking.tensorboard import EventLog

_CURRENT: ContextVar[ParentRun | None] = ContextVar("replab_parent_run", default=None)


def current() -> ParentRun | None:
    return _CURRENT.get()


@dataclass
class ParentRun:
    """A sweep, study or tune folder. Its MLflow run is made by the first of its runs that
    tracks to MLflow (it knows the URI), so a study of runs without MLflow makes none."""

    folder: Path
    kind: str  # sweep, study or tune
    name: str
    params: dict
    log: Log
    outer: ParentRun | None = None  # a tune inside a study
    clients: dict[str, tuple] = field(default_factory=dict)  # uri -> (client, run id)

    def mlflow_id(self, client, uri: str, experiment_id: str) -> str:
        """This folder's MLflow run on ``uri``: the one it started before (resumed), or new."""
        if uri in self.clients:
            return self.clients[uri][1]
        run_id = mlflow_run.read_ids(self.folder, MLFLOW_JSON).get(uri)
        if run_id:
            client.update_run(run_id, status="RUNNING")
        else:
            outer = self.outer.mlflow_id(client, uri, experiment_id) if self.outer else None
            run_id = mlflow_run.create_run(
                client,
                experiment_id,
                f"{self.kind} {self.name}",
                {"replab.kind": self.kind, "replab.folder": str(Path(self.folder).resolve())},
                outer,
            )
            mlflow_run.log_params(client, run_id, self.params)
            mlflow_run.remember_id(self.folder, MLFLOW_JSON, uri, run_id)
        self.clients[uri] = (client, run_id)
        return run_id

    def finish(self, figures: dict[str, bytes], files: list[Path]) -> None:
        """The study's figures as TensorBoard images beside its runs' (where they write
        TensorBoard), and its report files as artifacts of its MLflow run."""
        runs_write_events = any(Path(self.folder).glob(f"*/**/{TENSORBOARD_DIR}"))
        if figures and runs_write_events:
            Soft("TensorBoard")(self._images, figures)
        for client, run_id in self.clients.values():
            for path in files:
                if Path(path).is_file():
                    Soft("MLflow")(client.log_artifact, run_id, str(path))

    def _images(self, figures: dict[str, bytes]) -> None:
        events = EventLog(Path(self.folder) / TENSORBOARD_DIR)
        try:
            events.images(figures, 0, prefix=self.kind)
        finally:
            events.close()

    def close(self, status: str) -> None:
        for client, run_id in self.clients.values():
            Soft("MLflow")(client.set_terminated, run_id, status)


def folder_figures(folder: Path) -> dict[str, bytes]:
    """The PNG figures a sweep or tune wrote into ``folder``, by file name."""
    return {p.stem: p.read_bytes() for p in sorted(Path(folder).glob("*.png"))}


@contextlib.contextmanager
def parent_run(
    folder: Path, kind: str, name: str, params: dict, log: Log = print
) -> Iterator[ParentRun]:
    """Runs started inside are the children of ``folder``'s run (MLflow nesting)."""
    parent = ParentRun(Path(folder), kind, name, params, log, outer=current())
    token = _CURRENT.set(parent)
    try:
        yield parent
    except BaseException as err:
        parent.close(mlflow_run.status_of(err))
        raise
    else:
        parent.close("FINISHED")
    finally:
        _CURRENT.reset(token)
