"""replab: a representation-learning lab for PyTorch.

Layers, top to bottom; a module imports only layers below its own (tests/architecture
checks every import):

    cli -> api -> studies -> search -> runs -> reporting -> evaluation -> training -> tasks
        -> models, objectives, data, augment

- ``cli``: the ``replab`` command; ``api``: the same jobs as Python functions, exported here:
  ``replab.run``, ``load``, ``analyze``, ``study``, ``sweep``, ``tune`` (docs/python-api.md).
- ``studies``: the study framework and studies A-F (``replab study``).
- ``search``: many runs of one recipe: sweeps, Optuna tuning and its search space.
- ``runs``: the life of one run: train, evaluate, write its folder; rebuild reports.
- ``reporting``: figures and HTML; ``evaluation``: probes, metrics, latent analysis.
- ``training``: the trainer, optimizers, schedules, DDP; ``tasks``: a batch to a loss.
- ``models``, ``objectives``, ``data``, ``augment``: the registered components, peers.

``spec``, ``registry``, ``errors``, ``io`` and ``recipes`` (the bundled YAML recipes and
their reader) are usable from every layer.
"""

import logging
import warnings
from typing import Any

from replab.errors import ReplabWarning

__version__ = "0.1.0"

# A library's logger stays silent until the application configures logging (the Python API's
# progress lines go to it; warnings the user must see go through `warnings`, not here).
logging.getLogger("replab").addHandler(logging.NullHandler())
# replab's warnings show every time, not once per place as Python's default does: a notebook's
# second run against the same dead MLflow server must say so again. Appended, so any filter
# the user sets (warnings.filterwarnings, -W) still wins.
warnings.filterwarnings("always", category=ReplabWarning, append=True)

# The Python API (replab/api.py), imported on first use so that `import replab` stays light.
API = ("Run", "StudyResult", "SweepResult", "analyze", "load", "run", "study", "sweep", "tune")
__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from replab import api

        return getattr(api, name)
    raise AttributeError(f"module 'replab' has no attribute {name!r}")
