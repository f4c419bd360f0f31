"""The image space computed by a helper process while the encoder trains (issue 19): the
helper stores exactly what the analysis computes, the run lends it a CPU through the live
registry, it starts only when there is a CPU and time to spare, and it never outlives the run.
Real helper processes throughout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replab.data import cache_dir
from replab.evaluation import image_ahead
from replab.evaluation.analysis import analyse, image_space
from replab.evaluation.image_ahead import ImageSpaceAhead
from replab.spec import AnalysisSpec
from replab.training import threads
from tests.evaluation.test_space_cache import digits_like

SPEC = AnalysisSpec(tsne_sample=None, tsne_iterations=(50, 100))
# the record of a first epoch of 10 s, of 10: 90 s of training left
FIRST_EPOCH = {"epoch": 1, "seconds": 10.0}


@pytest.fixture
def spare_cpu(monkeypatch):
    """The run has two threads and none fixed: a CPU to lend (under xdist a worker has one)."""
    monkeypatch.setattr(threads, "_fixed", None)
    monkeypatch.delenv(threads.ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def helper(tmp_path, test=None, spec=SPEC) -> ImageSpaceAhead:
    test = test or digits_like()
    return ImageSpaceAhead(test.images, test.labels, spec, 0, tmp_path / "ahead", max_epochs=10)


@pytest.mark.heavy(6)  # seconds on one thread: tests/scheduling.py
def test_the_helper_stores_what_the_analysis_would_compute(tmp_path, spare_cpu):
    test = digits_like()
    ahead = helper(tmp_path, test)
    ahead(None, FIRST_EPOCH)
    assert ahead.process is not None
    # the run lends it a CPU: a run alone on 2 CPUs now takes 1
    live = threads.live_runs()
    assert [e["threads"] for e in live if e.get("helper")] == [1]
    assert threads.CpuShare(available=2, folder=threads.live_dir()).choose() == 1
    assert ahead.finish().startswith("image space: computed during training by a helper (")
    assert ahead.seconds > 0
    assert list((tmp_path / "ahead").iterdir()) == [next((tmp_path / "ahead").glob("*.npz"))]
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    read = analyse(test, z, SPEC, cache=tmp_path / "ahead")
    assert "t-SNE image space (cached)" in read.seconds
    computed = image_space(test.images, test.labels, SPEC, 0, tmp_path / "fresh")
    helped = next(s for s in read.spaces if s.name == "image space")
    np.testing.assert_array_equal(helped.points, computed.points)
    assert helped.scores == computed.scores
    # the helper has ended: its CPU is the run's again
    assert threads.CpuShare(available=2, folder=threads.live_dir()).choose() == 2


def test_the_image_space_does_not_depend_on_the_runs_thread_count(tmp_path):
    """It is computed with one thread whatever the run has, so the helper (one thread) and a
    run with two compute the same map."""
    test = digits_like()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = image_space(test.images, test.labels, SPEC, 0, tmp_path / "a")
        assert torch.get_num_threads() == 2  # restored after
        torch.set_num_threads(1)
        one = image_space(test.images, test.labels, SPEC, 0, tmp_path / "b")
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one.points, two.points)
    assert one.scores == two.scores
    # without a cache too: an analysis with no cache folder maps the pixels the same way
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    try:
        torch.set_num_threads(2)
        uncached = next(s for s in analyse(test, z, SPEC, cache=None).spaces if s.direct is False)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(uncached.points, one.points)
    assert uncached.name == "image space" and uncached.scores == one.scores
    assert [p.name for p in (tmp_path / "a").iterdir()] == [
        p.name for p in (tmp_path / "b").iterdir()
    ]


@pytest.mark.parametrize("why", ["one thread", "threads fixed", "short training", "cached"])
def test_no_helper_without_a_cpu_or_time_to_spare_or_when_cached(tmp_path, spare_cpu, why):
    test = digits_like()
    ahead = helper(tmp_path, test)
    record = dict(FIRST_EPOCH)
    if why == "one thread":
        torch.set_num_threads(1)
    elif why == "threads fixed":
        threads.fix(2)
    elif why == "short training":
        record["seconds"] = image_ahead.MIN_TRAINING_LEFT_S / 9 - 0.01
    else:
        image_space(test.images, test.labels, SPEC, 0, tmp_path / "ahead")
    ahead(None, record)
    assert ahead.process is None and ahead.finish() is None
    assert not [e for e in threads.live_runs() if e.get("helper")]


def test_only_the_first_epoch_decides(tmp_path, spare_cpu):
    ahead = helper(tmp_path)
    ahead(None, {"epoch": 1, "seconds": 0.1})  # too short to be worth it
    ahead(None, FIRST_EPOCH | {"epoch": 2})
    assert ahead.process is None


def test_stop_ends_a_running_helper_and_leaves_no_file(tmp_path, spare_cpu):
    ahead = helper(tmp_path)
    ahead(None, FIRST_EPOCH)
    process = ahead.process
    assert ahead.stop() not in (None, 0)  # killed while it still imported torch
    assert process.poll() is not None
    assert list((tmp_path / "ahead").iterdir()) == []
    assert ahead.stop() is None and ahead.finish() is None  # safe to repeat


def test_a_failed_helper_says_why_and_the_analysis_computes_the_image_space(
    tmp_path, spare_cpu, monkeypatch
):
    test = digits_like()
    ahead = helper(tmp_path, test)
    monkeypatch.setattr(image_ahead.np, "savez", lambda file, **_: file.write(b"not an npz"))
    ahead(None, FIRST_EPOCH)
    note = ahead.finish()
    assert note.startswith("image space: its helper failed (exit 1: ")
    assert "the analysis computes it" in note and "Error" in note
    assert list((tmp_path / "ahead").iterdir()) == []
    monkeypatch.undo()
    z = torch.randn(len(test), 5, generator=torch.Generator().manual_seed(1))
    result = analyse(test, z, SPEC, cache=tmp_path / "ahead")
    assert "t-SNE image space" in result.seconds  # computed, not read


def test_the_registry_lives_in_the_cache(tmp_path):
    assert threads.live_dir() == cache_dir() / "live"
