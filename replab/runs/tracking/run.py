"""One run's trackers: opened once its history is known, written per epoch and at the end."""

from __future__ import annotations

from pathlib import Path

import torch

from replab.io import Log
from replab.runs import rundir
from replab.runs.tracking import mlflow_run
from replab.runs.tracking.common import (
    MLFLOW_JSON,
    TENSORBOARD_DIR,
    Soft,
    mlflow_uri,
    relative_name,
)
from replab.runs.tracking.parent import ParentRun, current
from replab.runs.tracking.tensorboard import EventLog, hparam_values
from replab.spec import ExperimentSpec

# Files of a finished run every MLflow run gets as artifacts (the report embeds its figures).
ARTIFACTS = ("report.html", "config.yaml", "summary.json", "best.pt")
# Recipe sections that say nothing about how the run was trained
NOT_PARAMS = {"description", "report", "tracking"}


def flat_params(spec: ExperimentSpec) -> dict:
    """The resolved recipe as ``model.encoder.latent_dim: 32`` pairs (lists stay lists)."""
    out: dict = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            out[prefix] = node

    walk("", spec.model_dump(mode="json", exclude=NOT_PARAMS))
    return out


def learning_rates(trainer) -> list[float]:
    return [float(group["lr"]) for group in trainer.optimizer.param_groups]


class RunTracker:
    """TensorBoard and MLflow for one run folder (rank 0's); every call fails softly."""

    def __init__(self, spec: ExperimentSpec, run_dir: Path, log: Log) -> None:
        self.spec, self.run_dir, self.log = spec, Path(run_dir), log
        self.parent: ParentRun | None = current()
        self.events: EventLog | None = None
        self.mlflow: tuple | None = None  # (client, run id)
        self._tb, self._ml = Soft("TensorBoard"), Soft("MLflow")

    # --- opening ---------------------------------------------------------------------
    def start(self, trainer) -> None:
        """Open the trackers; a resumed run continues its event files and its MLflow run."""
        if self.spec.tracking.tensorboard:
            self.events = self._tb(self._open_events, trainer)
        uri = mlflow_uri(self.spec.tracking)
        if uri:
            self.mlflow = self._ml(self._open_mlflow, uri)

    def _open_events(self, trainer) -> EventLog:
        history = trainer.history
        events = EventLog(
            self.run_dir / TENSORBOARD_DIR, purge_from=history[-1]["epoch"] if history else None
        )
        if history:  # its last epoch again: the killed process may not have written it
            events.epoch(history[-1], learning_rates(trainer))
        else:
            events.text("run", f"{self.spec.name}: {self.run_dir}")
        return events

    def _open_mlflow(self, uri: str) -> tuple:
        client, experiment_id = mlflow_run.connect(uri, self.spec.tracking.mlflow_experiment)
        run_id = mlflow_run.read_ids(self.run_dir, MLFLOW_JSON).get(uri)
        if run_id:  # resumed: the same MLflow run goes on
            client.update_run(run_id, status="RUNNING")
            self.log(f"MLflow: continuing run {run_id} at {uri}")
            return client, run_id
        parent = self.parent.mlflow_id(client, uri, experiment_id) if self.parent else None
        name = relative_name(self.run_dir, self.parent.folder if self.parent else None)
        run_id = mlflow_run.create_run(
            client,
            experiment_id,
            self.spec.name if self.parent is None else f"{self.spec.name} ({name})",
            {"replab.run_dir": str(self.run_dir.resolve()), "replab.recipe": self.spec.name},
            parent,
        )
        mlflow_run.remember_id(self.run_dir, MLFLOW_JSON, uri, run_id)
        mlflow_run.log_params(client, run_id, flat_params(self.spec))
        self.log(f"MLflow: run {run_id} at {uri}")
        return client, run_id

    # --- while training: the Trainer's epoch hook -----------------------------------------
    def epoch(self, trainer, record: dict) -> None:
        if self.events is not None:
            self._tb(self.events.epoch, record, learning_rates(trainer))
        if self.mlflow is not None:
            client, run_id = self.mlflow
            # one name per metric (docs/metrics.md): val_loss each epoch is the series the
            # final val.loss closes, not a second metric beside it
            scalars = {
                rundir.metric_name(k): v for k, v in record.items() if k not in ("epoch", "best")
            }
            lrs = learning_rates(trainer)
            scalars.update({"lr" if i == 0 else f"lr_group{i}": lr for i, lr in enumerate(lrs)})
            self._ml(mlflow_run.log_metrics, client, run_id, scalars, int(record["epoch"]))

    # --- at the end ----------------------------------------------------------------------
    def finish(
        self,
        summary: dict,
        figures: dict[str, bytes],
        projector: tuple[torch.Tensor, torch.Tensor, list[str]] | None = None,
    ) -> None:
        """Final metrics, figures and test latents; the run folder's files to MLflow."""
        step = max(1, int(summary.get("epochs") or 1))
        if self.events is not None:
            self._tb(self._finish_events, summary, figures, projector, step)
        if self.mlflow is not None:
            self._ml(self._finish_mlflow, summary, step)

    def _finish_events(self, summary, figures, projector, step: int) -> None:
        assert self.events is not None
        self.events.final(summary["metrics"], hparam_values(flat_params(self.spec)), step)
        self.events.images(figures, step)
        points = self.spec.tracking.projector_points
        if projector is not None and points:
            latents, images, labels = _sample(projector, points, self.spec.seed)
            self.events.projector(latents, images, labels, step)
        self.events.writer.flush()

    def _finish_mlflow(self, summary: dict, step: int) -> None:
        client, run_id = self.mlflow  # type: ignore[misc]
        mlflow_run.log_metrics(client, run_id, summary["metrics"], step)
        for name in ARTIFACTS:
            if (self.run_dir / name).is_file():
                client.log_artifact(run_id, str(self.run_dir / name))

    def close(self, err: BaseException | None) -> None:
        """End the trackers: MLflow's run FINISHED, FAILED or KILLED (``err``: why it ended)."""
        if self.events is not None:
            self._tb(self.events.close)
            self.events = None
        if self.mlflow is not None:
            client, run_id = self.mlflow
            self._ml(client.set_terminated, run_id, mlflow_run.status_of(err))
            self.mlflow = None


def _sample(projector: tuple[torch.Tensor, torch.Tensor, list[str]], k: int, seed: int):
    """At most ``k`` test points, the same ones for every run of a seed (the projector and
    its sprite stay small: a 10,000-point sprite is a 2800-pixel image)."""
    latents, images, labels = projector
    n = len(latents)
    if n <= k:
        return latents, images, labels
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
    return latents[pick], images[pick], [labels[i] for i in pick.tolist()]
