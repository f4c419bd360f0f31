"""Streamed runs end to end in real processes: two gloo ranks under torchrun on shards dealt
unevenly, and a streamed run SIGKILLed after its second epoch that ``--resume`` brings to the
uninterrupted run's figures."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replab.data.pack import pack
from replab.data.shard_index import INDEX, ShardIndex
from replab.io import read_jsonl
from tests.runs.test_ddp_run import REPO, torchrun
from tests.runs.test_kill_resume import assert_same_metrics, child_env

STREAMED = [
    "digits-autoencoder",
    "data.dataset=shards",
    "data.val_fraction=0.1",
    "data.resident=false",
    "data.workers=1",
    "trainer.progress=false",
    "analysis.enabled=false",
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "digits"
    pack("digits", out, shard_bytes=150_000, progress=False)
    index = ShardIndex.model_validate_json((out / INDEX).read_text())
    train = index.splits["train"].shards
    # uneven between two ranks: an odd number of shards, so one rank reads more of them
    assert len(train) % 2 == 1 or len({s.count for s in train}) > 1, len(train)
    return out


def only_run(runs: Path) -> Path:
    (run,) = [d for d in runs.iterdir() if d.is_dir()]
    return run


@pytest.mark.slow
def test_two_ranks_stream_their_own_shards_and_step_together(shards, tmp_path):
    args = [*STREAMED, f"data.root={shards}", "trainer.epochs=3", "probe.enabled=false"]
    proc = torchrun([*args, "--runs-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = only_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data_residency"].startswith("every split streamed")
    records = [r for r in read_jsonl(run / "metrics.jsonl") if "train_loss" in r]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]


def replab(args: list[str], kill_after_epoch: int | None = None) -> int | None:
    """``replab run ARGS``; SIGKILLed once its log shows epoch ``kill_after_epoch``. A failure
    prints its output (pytest shows it beside the failed assert)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "replab.cli", "run", *args],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if kill_after_epoch and line.startswith(f"[replab] epoch   {kill_after_epoch}/"):
            time.sleep(0.5)  # the epoch's checkpoint is written right after its log line
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return None
    code = proc.wait(timeout=600)
    if code:
        print("".join(lines))
    return code


@pytest.mark.slow
def test_a_killed_streamed_run_resumes_to_the_uninterrupted_figures(shards, tmp_path):
    args = [*STREAMED, f"data.root={shards}", "trainer.epochs=5", "seed=2"]
    assert replab([*args, "--runs-dir", str(tmp_path / "whole")]) == 0
    assert replab([*args, "--runs-dir", str(tmp_path / "killed")], kill_after_epoch=2) is None
    run = only_run(tmp_path / "killed")
    done = [r["epoch"] for r in read_jsonl(run / "metrics.jsonl") if "train_loss" in r]
    assert 2 <= done[-1] < 5
    assert replab(["--resume", str(run)]) == 0
    got = json.loads((run / "summary.json").read_text())["metrics"]
    want = json.loads((only_run(tmp_path / "whole") / "summary.json").read_text())["metrics"]
    assert_same_metrics(got, want)
