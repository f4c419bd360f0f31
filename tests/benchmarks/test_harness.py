"""The benchmark scripts run and write what the README says (tiny settings; no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import harness  # noqa: E402
import study_walltime  # noqa: E402


def _bench(script: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "benchmarks" / script), *args]
    return subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.data
def test_studies_benchmark_runs_and_writes_json(data_dir, tmp_path):
    out = tmp_path / "studies.json"
    proc = _bench(
        "studies.py",
        "--studies",
        "a1",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    (study,) = result["studies"]
    assert (
        study["study"] == "a1"
        and study["recipe"] == "a1-mnist-autoencoder"
        and study["batch_size"] == 128
    )
    assert [r["method"] for r in study["results"]] == ["replab", "reference", "floor"]
    assert all(
        r["steps"] == 2 and r["samples"] == 256 and r["samples_per_s"] > 0 for r in study["results"]
    )
    assert set(study["ratios"]) == {"replab / floor", "reference / replab"} and set(
        study["passed"]
    ) == set(study["targets"])
    assert isinstance(result["disturbed"], bool) and "replab/floor" in proc.stdout


def test_timed_reports_cpu_used_elsewhere():
    with harness.timed() as t:
        sum(range(100_000))
    assert t.seconds > 0 and t.other_share >= 0.0 and isinstance(t.disturbed, bool)


def test_walltime_split_sums_the_runs_timings(tmp_path):
    for run, train, evaluation in (("A1/seed0", 80.0, 15.0), ("A3/seed0", 180.0, 5.0)):
        (tmp_path / run).mkdir(parents=True)
        timings = {
            "data": 1.0,
            "train": train,
            "probe": evaluation / 2,
            "analysis": evaluation / 2,
            "evaluation": evaluation,
            "total": 1.0 + train + evaluation,
        }
        (tmp_path / run / "summary.json").write_text(json.dumps({"timings": timings}))
    a = study_walltime.split(tmp_path)
    assert [r["run"] for r in a["runs"]] == ["A1/seed0", "A3/seed0"]
    assert a["parts"]["A1"]["train"] == 80.0 and a["total"]["total"] == 282.0
    assert a["eval_share"] == pytest.approx(20.0 / 282.0) and a["eval_passed"] is True


@pytest.mark.data
def test_time_to_accuracy_runs_and_writes_json(data_dir, tmp_path):
    out = tmp_path / "tta.json"
    proc = _bench(
        "time_to_accuracy.py",
        "--max-epochs",
        "1",
        "--target",
        "0.0",
        "--set",
        "data.limit_train=500",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (
        result["reached"]["epoch"] == 1
        and len(result["curve"]) == 1
        and 0.0 <= result["curve"][0]["test_accuracy"] <= 1.0
    )


@pytest.mark.data
def test_simclr_throughput_runs_and_writes_json(data_dir, tmp_path):
    out = tmp_path / "simclr.json"
    proc = _bench(
        "simclr_throughput.py",
        "--quick",
        "--set",
        "trainer.batch_size=16",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--configs",
        "eager,bf16",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # bf16 autocast is CUDA-only in replab: skipped on CPU
    assert [r["config"] for r in result["results"]] == ["eager"]
    (row,) = result["results"]
    assert row["views_per_s"] > 0 and row["augment_share"] > 0.0 and row["steps"] == 1


def test_decode_images_benchmark_runs_and_writes_json(tmp_path):
    """Without a data folder it falls back to the digits and random colour images."""
    out = tmp_path / "decode.json"
    proc = _bench(
        "decode_images.py",
        "--n",
        "60",
        "--repeats",
        "1",
        "--data-dir",
        str(tmp_path / "no-data"),
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert {(r["set"], r["step"]) for r in rows} >= {
        ("fashion-png", "decode/1"),
        ("fashion-png", "first load"),
        ("fashion-png", "cached load"),
        ("cifar-jpeg", "first load"),
    }
    assert all(r["images"] == 60 and r["images_per_s"] > 0 for r in rows)


@pytest.mark.heavy(22)  # seconds on one thread: tests/scheduling.py
def test_image_ahead_benchmark_runs_a_pair_and_writes_json(tmp_path):
    out = tmp_path / "ahead.json"
    proc = _bench(
        "image_ahead.py",
        "--recipe",
        "digits-autoencoder",
        "--pairs",
        "1",
        "--set",
        "trainer.epochs=2",
        "probe.trainer.epochs=5",
        "analysis.tsne_iterations=[50,100]",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "the same metrics in every pair: yes" in proc.stdout
    runs = json.loads(out.read_text())["runs"]
    assert [r["ahead"] for r in runs] == [True, False]
    assert all(0 < r["share"] < 1 and r["total"] > r["train"] for r in runs)
