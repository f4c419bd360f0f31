"""Runs: the life of a run folder — made, locked, its status and trackers kept, resumed
(``lifecycle``); the work inside it — data, training, outputs (``session``, from what
``prepare`` builds); the evaluation of an encoder, trained here or anywhere (``evaluate``,
``analyze``); the run folder's files and state (``rundir``); and reports rebuilt from saved
runs (``rebuild``)."""
