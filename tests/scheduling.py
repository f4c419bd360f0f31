"""The order parallel test workers take the suite in: each starts on its share of the heavy tests.

`make test` runs pytest-xdist's worksteal scheduler: worker i of N first gets a contiguous
chunk of the collected tests, and a worker whose chunk runs out takes half of the longest
remaining queue from its end. In collection order the heavy tests (whole quick studies,
30-80 s each on one thread) sit together in tests/studies, so one worker got nearly all of
them and ran alone for its last 90-140 s (2 workers, 2026-12-02). Here the heavy tests are
dealt longest first to the least loaded worker and put at the head of its chunk; the short
tests fill the chunks in collection order, and stealing evens out the end.

A heavy test carries ``@pytest.mark.heavy(seconds)``: its wall time on one thread, a
scheduling hint only (a wrong figure costs time, never a result). ``group=True`` on a
module's mark keeps its tests on one worker, for a module fixture that trains once.
"""

from __future__ import annotations

import os
from itertools import islice

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "heavy(seconds, group=False): a long test, scheduled first on a parallel worker "
        "(tests/scheduling.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        items[:] = balanced_order(items, workers)


def balanced_order(items: list, workers: int) -> list:
    """``items`` reordered so each of ``workers`` contiguous chunks (the sizes worksteal
    sends first) opens with a longest-first share of the heavy tests."""
    groups: dict[str, list] = {}
    seconds: dict[str, float] = {}
    light = []
    for item in items:
        mark = item.get_closest_marker("heavy")
        if mark is None:
            light.append(item)
            continue
        key = item.nodeid.split("::")[0] if mark.kwargs.get("group") else item.nodeid
        groups.setdefault(key, []).append(item)
        seconds[key] = float(mark.args[0])
    chunks: list[list] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for key in sorted(groups, key=lambda k: -seconds[k]):  # stable: ties keep collection order
        least = load.index(min(load))
        chunks[least].extend(groups[key])
        load[least] += seconds[key]
    rest = iter(light)
    left = len(items)
    for i, chunk in enumerate(chunks):
        size = left // (workers - i)  # what worksteal sends worker i at the start
        left -= size
        chunk.extend(islice(rest, max(0, size - len(chunk))))
    ordered = [item for chunk in chunks for item in chunk]
    return ordered + list(rest)
