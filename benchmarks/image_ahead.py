"""A cold run with and without the image space's helper (issue 19): the evaluation's share
of the run, the run's wall time, and the same results.

Each pair runs the recipe twice in fresh caches (so the image space is computed, not read
from an earlier run): ``analysis.image_space_ahead=true`` and ``=false``, the order
alternating from pair to pair, one run at a time. Per run it reads ``summary.json``'s
timings (``evaluation`` = everything after training: probe, analysis; ``image_space_helper``
= the helper's wall time) and times the whole process. It checks that the two runs of a pair
report the same metrics, and prints the shares and the wall times side by side.

Run from the repository root on an idle machine (a full A1 pair takes about 3.5 minutes)::

    .venv/bin/python benchmarks/image_ahead.py --pairs 3
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
from harness import REPO, RESULTS, default_data_dir, disturbed_warning, environment, timed  # noqa: E402

TARGET = 0.15  # probe + analysis at most 15% of a full A1 run


def one_run(
    recipe: str, ahead: bool, seed: int, data_dir: Path, work: Path, extra: list[str]
) -> dict:
    """One cold run in a fresh cache; its timings, threads and metrics."""
    cache, runs = Path(tempfile.mkdtemp(dir=work)), Path(tempfile.mkdtemp(dir=work))
    cmd = [
        sys.executable,
        "-m",
        "replab.cli",
        "run",
        recipe,
        f"analysis.image_space_ahead={str(ahead).lower()}",
        f"seed={seed}",
        *extra,
        "--runs-dir",
        str(runs),
        "--data-dir",
        str(data_dir),
    ]
    env = {**os.environ, "REPLAB_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    log = work / f"{runs.name}.log"
    with timed() as t, open(log, "w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    if code.returncode != 0:
        raise SystemExit(f"the run failed (exit {code.returncode}); its log: {log}")
    (summary_path,) = runs.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    timings = summary["timings"]
    history = [json.loads(line) for line in (summary_path.parent / "metrics.jsonl").open()]
    ends = [0.0] + [float(r["seconds"]) for r in history]  # each epoch's end, from the start
    return {
        "ahead": ahead,
        "seed": seed,
        "process_s": t.seconds,
        "cpu_used_elsewhere": t.other_share,
        "disturbed": t.disturbed,
        **{k: timings.get(k) for k in ("data", "train", "probe", "analysis", "evaluation")},
        "total": timings["total"],
        "image_space_helper": timings.get("image_space_helper"),
        "share": timings["evaluation"] / timings["total"],
        "epochs": summary.get("epochs"),
        "thread_changes": summary["threads"]["changes"],
        "epoch_seconds": [round(b - a, 2) for a, b in zip(ends, ends[1:], strict=False)],
        "metrics": summary["metrics"],
    }


def show(row: dict) -> str:
    helper = row["image_space_helper"]
    parts = [
        f"seed {row['seed']} {'on ' if row['ahead'] else 'off'}",
        f"train {row['train']:6.1f}",
        f"evaluation {row['evaluation']:5.1f} (probe {row['probe']:4.1f})",
        f"total {row['total']:6.1f}",
        f"process {row['process_s']:6.1f}",
        f"share {row['share']:6.1%}",
        f"helper {'-' if helper is None else f'{helper:.0f} s'}",
        f"threads {row['thread_changes']}",
        f"probe {row['metrics'].get('probe.test_accuracy', float('nan')):.4f}",
    ]
    return "  ".join(parts) + ("  DISTURBED" if row["disturbed"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="a1-mnist-autoencoder")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seeds", default="0", help="comma-separated: pair i runs seed i mod n")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--set", nargs="*", default=[], help="more KEY=VALUE overrides")
    parser.add_argument("--json", type=Path, default=RESULTS / "image_ahead.json")
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]
    env = environment()
    print(f"{args.recipe}, {args.pairs} pairs; load average {env['load_average']}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for pair in range(args.pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            seed = seeds[pair % len(seeds)]
            runs = [
                one_run(args.recipe, a, seed, args.data_dir, Path(work), args.set) for a in order
            ]
            for row in runs:
                row["pair"] = pair
                print(f"pair {pair + 1}: {show(row)}", flush=True)
            if runs[0]["metrics"] != runs[1]["metrics"]:
                raise SystemExit(f"pair {pair + 1}: the two runs report different metrics")
            rows.extend(runs)
    on = [r for r in rows if r["ahead"]]
    off = [r for r in rows if not r["ahead"]]
    mean = lambda rs, k: statistics.mean(r[k] for r in rs)  # noqa: E731
    print("\nmeans       helper on   helper off   on / off")
    for key in ("train", "evaluation", "total", "process_s"):
        a, b = mean(on, key), mean(off, key)
        print(f"{key:11s} {a:9.1f} s {b:10.1f} s {a / b:9.2f}x")
    shares = lambda rs: ", ".join(f"{r['share']:.1%}" for r in rs)  # noqa: E731
    print(f"evaluation share with the helper: {shares(on)} (target <= {TARGET:.0%})")
    print(f"without it: {shares(off)}")
    print("the same metrics in every pair: yes")
    warning = disturbed_warning([f"pair {r['pair'] + 1}" for r in rows if r["disturbed"]])
    if warning:
        print(warning)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for r in rows:
        r.pop("metrics")
    args.json.write_text(json.dumps({"environment": env, "recipe": args.recipe, "runs": rows}))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
