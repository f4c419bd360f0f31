"""`replab run` under torchrun (2 gloo processes on CPU) trains the same model as one process.

Same seed and the same global batch (trainer.batch_size is global), a train split whose last
batch splits evenly, so nothing is trimmed: the two runs differ only by float summation order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replab.cli import main
from replab.io import load_checkpoint, read_jsonl

ARGS = [
    "digits-autoencoder",
    "trainer.epochs=4",
    "trainer.progress=false",
    "analysis.enabled=false",
    "probe.enabled=false",
    "data.limit_train=1000",
]  # 1000 = 15 x 64 + 40: the last batch splits into 2 x 20
ATOL = 1e-5
REPO = Path(__file__).resolve().parents[2]


def only_run(runs_dir):
    (run,) = list(runs_dir.iterdir())
    return run


def torchrun(args, nproc=2):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "replab.cli",
        "run",
        *args,
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one(tmp_path):
    proc = torchrun([*ARGS, "--runs-dir", str(tmp_path / "two")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["run", *ARGS, "--runs-dir", str(tmp_path / "one")]) == 0
    # rank 1 wrote no folder of its own
    one, two = only_run(tmp_path / "one"), only_run(tmp_path / "two")

    # rank 0 alone prints: one summary, one line per epoch
    assert proc.stdout.count("run folder:") == 1 and proc.stdout.count("epoch   1/4") == 1, (
        proc.stdout
    )

    assert len(load_checkpoint(two / "last.pt")["torch_rng_ranks"]) == 2  # it did train on 2 ranks
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(one / name)["model"], load_checkpoint(two / name)["model"]
        assert a.keys() == b.keys()
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        print(f"{name}: largest weight difference {diff:.3g}")
        assert diff <= ATOL, f"{name}: weights differ by {diff}"

    ha, hb = read_jsonl(one / "metrics.jsonl"), read_jsonl(two / "metrics.jsonl")
    assert [r["epoch"] for r in ha] == [r["epoch"] for r in hb] == [1, 2, 3, 4]
    for ra, rb in zip(ha, hb, strict=True):
        for key in (k for k in ra if k.startswith(("train_", "val_"))):
            assert rb[key] == pytest.approx(ra[key], abs=ATOL), (ra["epoch"], key)
    ma, mb = (json.loads((run / "summary.json").read_text())["metrics"] for run in (one, two))
    assert ma.keys() == mb.keys()
    print("largest metric difference", max(abs(ma[k] - mb[k]) for k in ma))
    for key in ma:
        assert mb[key] == pytest.approx(ma[key], abs=ATOL * max(1.0, abs(ma[key]))), key
