"""Where ``--jobs`` workers come from: multiprocessing's fork server, started early.

The server is a fresh interpreter that imports replab and the evaluation libraries once
(``replab.runs.preload``) and forks a worker per process asked for. Started when the command
line is read, it imports while the command imports its own modules, so the two share the
cores instead of the workers' imports waiting for the command's. Only the standard library is
imported here, so the command line can start it before importing anything heavy.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

# Spawned workers each imported these: about 5 s of CPU apiece (3.3 s replab and torch, 1.7 s
# scikit-learn, openTSNE and matplotlib), paid on the same cores while the first runs started.
PRELOAD = ["replab.runs.preload"]


def context() -> BaseContext:
    """Fork server where the platform has one (Linux, macOS), else spawn (Windows). The
    server is a fresh interpreter that has run nothing: forking it is safe where forking the
    parent (torch's and OpenMP's threads started) is not."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(PRELOAD)
    return server


def start() -> None:
    """Start the fork server now (it would start with the first worker otherwise)."""
    if context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
