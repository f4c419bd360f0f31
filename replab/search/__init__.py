"""Search: many runs of one recipe — grids of values (``sweep``), the search space of a
hyperparameter search (``space``) and Optuna tuning over it (``tune``)."""
