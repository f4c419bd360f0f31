"""replab: a representation-learning lab for PyTorch.

Layers, top to bottom; a module imports only layers below its own (tests/architecture
checks every import):

    cli -> api -> studies -> search -> runs -> reporting -> evaluation -> training -> tasks
        -> models, objectives, data, augment

- ``cli``: the ``replab`` command; ``api``: the same jobs as Python functions.
- ``studies``: the study framework and studies A-F (``replab study``).
- ``search``: many runs of one recipe: sweeps, Optuna tuning and its search space.
- ``runs``: the life of one run: train, evaluate, write its folder; rebuild reports.
- ``reporting``: figures and HTML; ``evaluation``: probes, metrics, latent analysis.
- ``training``: the trainer, optimizers, schedules, DDP; ``tasks``: a batch to a loss.
- ``models``, ``objectives``, ``data``, ``augment``: the registered components, peers.

``spec``, ``registry``, ``errors``, ``io`` and ``recipes`` (the bundled YAML recipes and
their reader) are usable from every layer.
"""

__version__ = "0.1.0"
