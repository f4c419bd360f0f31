"""Issue 19: several replab runs on one machine, torch's default threads vs replab's sharing.

Default mode: 1, 2 and 3 concurrent A1 runs (the A1 recipe, ``--epochs`` epochs, probe and
analysis off, as the issue measured), each a ``replab run`` subprocess started at the same
moment, twice per count:

- ``torch default``: ``REPLAB_THREADS`` set to torch's own default count (what every run did
  before issue 19: each process as many threads as the machine has cores);
- ``replab share``: no setting, so each run takes its share of the CPUs from the live-run
  registry.

It prints the wall time until the last run ends and the total throughput (runs per hour)
relative to one run alone, side by side.

``--compare-jobs``: ``replab study a --quick --seeds 2 --jobs 2`` against ``--jobs 1``.

Run from the repository root on an idle machine::

    .venv/bin/python benchmarks/concurrency.py                  # 1, 2, 3 concurrent A1 runs
    .venv/bin/python benchmarks/concurrency.py --compare-jobs   # study a, --jobs 2 vs 1
    .venv/bin/python benchmarks/concurrency.py --epochs 1 --counts 1,2   # a smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from harness import REPO, RESULTS, add_machine_args, disturbed_warning, environment, timed  # noqa: E402


def _env(threads: int | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REPLAB_THREADS", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    if threads is not None:
        env["REPLAB_THREADS"] = str(threads)
    return env


# --jobs workers fork from multiprocessing's fork server, which the command leaves to exit
# by itself: never reaped by the command, its CPU (and the workers') would count as another
# process's and flag the timing as disturbed. Stopping it before exit reaps it.
_MAIN = (
    "import sys; from replab.cli import main; rc = main(); "
    "from multiprocessing import forkserver; forkserver._forkserver._stop(); sys.exit(rc)"
)


def _replab(*args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, *args]


def concurrent_runs(count: int, threads: int | None, epochs: int, data: Path, runs: Path) -> dict:
    """``count`` A1 runs started together; wall seconds until the last one ends."""
    cmd = _replab(
        "run",
        "a1-mnist-autoencoder",
        f"trainer.epochs={epochs}",
        "trainer.early_stopping=null",
        "probe.enabled=false",
        "analysis.enabled=false",
        "data.download=false",
        "--data-dir",
        str(data),
        "--runs-dir",
        str(runs),
    )
    with timed() as t:
        procs = [
            subprocess.Popen(
                cmd, env=_env(threads), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            for _ in range(count)
        ]
        errors = [p.communicate()[1].decode(errors="replace") for p in procs]
    failed = [e[-400:] for p, e in zip(procs, errors, strict=True) if p.returncode]
    if failed:
        raise SystemExit(f"a run failed:\n{failed[0]}")
    return {"runs": count, "wall_s": t.seconds, "disturbed": t.disturbed}


def compare_runs(args) -> list[dict]:
    default = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix="replab-concurrency-") as tmp:
        for count in args.counts:
            for label, threads in (("torch default", default), ("replab share", None)):
                row = concurrent_runs(count, threads, args.epochs, args.data_dir, Path(tmp))
                rows.append({"mode": label, **row})
                print(f"  {label:<14} {count} run(s): {row['wall_s']:.1f} s", flush=True)
    alone = {r["mode"]: r["wall_s"] for r in rows if r["runs"] == 1}
    print(
        f"\n{'runs':>4}  {'torch default s':>16}{'throughput':>12}  {'replab share s':>15}"
        f"{'throughput':>12}"
    )
    for count in args.counts:
        cells = []
        for mode in ("torch default", "replab share"):
            row = next(r for r in rows if r["runs"] == count and r["mode"] == mode)
            # runs finished per second, relative to one run alone with the same setting
            row["throughput_vs_alone"] = (count / row["wall_s"]) / (1 / alone[mode])
            cells.append(f"{row['wall_s']:>16.1f}{row['throughput_vs_alone']:>11.2f}x")
        print(f"{count:>4}  " + "  ".join(cells))
    return rows


def compare_jobs(args) -> list[dict]:
    """``--repeat`` pairs of --jobs 1 then --jobs 2, back to back: the host's speed drifts
    (the same --jobs 1 took 40-49 s within ten minutes), so each pair gives one ratio and the
    median of the ratios is the figure."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="replab-jobs-") as tmp:
        for rep in range(args.repeat):
            for jobs in (1, 2):
                rows.append(_time_study(jobs, rep, args.data_dir, Path(tmp)))
            ratio = rows[-2]["wall_s"] / rows[-1]["wall_s"]
            rows[-1]["speedup"] = ratio
            print(f"  pair {rep + 1}: --jobs 2 {ratio:.2f}x faster than --jobs 1", flush=True)
    ratios = sorted(r["speedup"] for r in rows if "speedup" in r)
    print(
        f"\n--jobs 2 vs --jobs 1: median {statistics.median(ratios):.2f}x faster "
        f"(pairs: {', '.join(f'{x:.2f}x' for x in ratios)})"
    )
    return rows


def _time_study(jobs: int, rep: int, data_dir: Path, tmp: Path) -> dict:
    cmd = _replab(
        "study",
        "a",
        "--quick",
        "--seeds",
        "2",
        "--jobs",
        str(jobs),
        "--data-dir",
        str(data_dir),
        "--runs-dir",
        str(tmp / f"jobs{jobs}-{rep}"),
    )
    with timed() as t:
        done = subprocess.run(cmd, env=_env(None), cwd=REPO, capture_output=True)
    if done.returncode:
        raise SystemExit(f"--jobs {jobs} failed:\n{done.stderr.decode()[-400:]}")
    print(f"  study a --quick --seeds 2 --jobs {jobs}: {t.seconds:.1f} s", flush=True)
    return {"jobs": jobs, "pair": rep + 1, "wall_s": t.seconds, "disturbed": t.disturbed}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_machine_args(parser)
    parser.add_argument("--epochs", type=int, default=6, help="A1 epochs per run (default 6)")
    parser.add_argument(
        "--counts",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 3],
        help="concurrent runs to time (default 1,2,3)",
    )
    parser.add_argument(
        "--compare-jobs", action="store_true", help="study a --quick --seeds 2: --jobs 2 vs 1"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="--compare-jobs: pairs to time (default 3)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="default results/concurrency.json, or results/concurrency-jobs.json with "
        "--compare-jobs (one file per mode, so neither run overwrites the other)",
    )
    args = parser.parse_args(argv)
    rows = compare_jobs(args) if args.compare_jobs else compare_runs(args)
    labels = [
        f"--jobs {r['jobs']} (pair {r['pair']})" if "jobs" in r else f"{r['mode']} x{r['runs']}"
        for r in rows
    ]
    warning = disturbed_warning(
        [lab for lab, r in zip(labels, rows, strict=True) if r["disturbed"]]
    )
    if warning:
        print(warning)
    mode = "jobs" if args.compare_jobs else "runs"
    args.json = args.json or RESULTS / (
        "concurrency-jobs.json" if args.compare_jobs else "concurrency.json"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": environment(), "mode": mode, "rows": rows}))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
