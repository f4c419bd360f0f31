"""Experiment tracking: each run's metrics, figures and latents in TensorBoard and MLflow.

The run folder stays the record; trackers are views of it, written once per epoch (never per
step) and at the end of the run. TensorBoard is on by default (``tracking.tensorboard``):
event files in ``RUN/tensorboard/``, so ``tensorboard --logdir runs/`` shows every run, sweep
point, study part and tune trial side by side. MLflow is on when ``tracking.mlflow`` or
``$MLFLOW_TRACKING_URI`` names a tracking server: one MLflow run per replab run, nested under
the sweep, study or tune that started it (``parent_run``). A tracker that fails (a server
down, a package missing) is a warning, never a failed run.
"""

from replab.runs.tracking.parent import ParentRun, folder_figures, parent_run
from replab.runs.tracking.run import RunTracker, flat_params

__all__ = ["ParentRun", "RunTracker", "flat_params", "folder_figures", "parent_run"]
