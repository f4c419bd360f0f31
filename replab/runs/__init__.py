"""Runs: the life of one run — train, evaluate and write its folder (``experiment``), the run
folder's files and state (``rundir``), and reports rebuilt from saved runs (``rebuild``)."""
