"""Imported once by the ``--jobs`` fork server (``replab.runs.pool``), so that its workers
start with replab and the libraries of evaluation already loaded. scikit-learn and openTSNE
load as evaluation loads them: with a passive OpenMP runtime (``replab.io.import_passive``)."""

from replab.io import import_passive
from replab.runs import experiment  # noqa: F401 - training, evaluation, reporting

for _module in ("sklearn.neighbors", "sklearn.metrics", "openTSNE", "matplotlib.pyplot"):
    import_passive(_module)
