"""Imported once by the ``--jobs`` fork server (``replab.runs.pool``), so that its workers
start with replab and the libraries of evaluation already loaded. scikit-learn and openTSNE
load as evaluation loads them (``replab.io.import_limited``)."""

from replab.io import import_limited
from replab.runs import lifecycle  # noqa: F401 - training, evaluation, reporting

for _module in ("sklearn.neighbors", "sklearn.metrics", "openTSNE", "matplotlib.pyplot"):
    import_limited(_module)
