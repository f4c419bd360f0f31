"""Does a change keep every bundled recipe's metrics? Quick studies before and after, compared.

A refactor (the layer redesign, a trainer change meant to be neutral) must not move a single
figure. This script runs the default job and ``replab study X --quick`` for every registered
study (their quick profiles cover every bundled recipe a study uses) with one fixed thread
count, collects the ``metrics`` of every run's ``summary.json`` and writes them to JSON.
Given ``--against OLD.json`` it prints each metric that differs and exits 1 if any does.

Typical use, from the repository root (one heavy job at a time on a small machine)::

    git worktree add /tmp/before <old-commit>
    # from inside the worktree: run from the repository root, the editable install's replab/
    # (the current directory comes first on sys.path) would win over PYTHONPATH
    (cd /tmp/before && PYTHONPATH=/tmp/before $OLDPWD/.venv/bin/python \
        benchmarks/same_metrics.py --json /tmp/before.json)
    .venv/bin/python benchmarks/same_metrics.py --json /tmp/after.json --against /tmp/before.json

Run both sides with the same ``--threads`` (default 2): float sums differ with the thread
count, so figures are only comparable at the same one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import default_data_dir  # noqa: E402

from replab.studies.runner import catalogue  # noqa: E402

# Every registered study's quick profile, and study a once more on its other dataset.
STUDIES = (*(name for name, _, _ in catalogue()), "a:cifar10")
# Keys whose value is a time or a machine fact, not a result of the computation.
VOLATILE = ("seconds", "time", "_s")


def run_all(studies: list[str], data_dir: Path, threads: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "REPLAB_THREADS": str(threads)}
    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="replab-same-") as tmp:
        jobs = [("default", ["run", "--runs-dir", f"{tmp}/default"])]
        for study in studies:
            name, _, dataset = study.partition(":")
            extra = ["--dataset", dataset] if dataset else []
            jobs.append(
                (
                    study,
                    [
                        "study",
                        name,
                        "--quick",
                        *extra,
                        "--data-dir",
                        str(data_dir),
                        "--runs-dir",
                        f"{tmp}/{study}",
                    ],
                )
            )
        for label, args in jobs:
            print(f"[same_metrics] replab {' '.join(args)}", flush=True)
            code = [
                sys.executable,
                "-c",
                f"import torch, sys; torch.set_num_threads({threads}); "
                "from replab.cli import main; sys.exit(main(sys.argv[1:]))",
                *args,
            ]
            subprocess.run(code, env=env, check=True, stdout=subprocess.DEVNULL)
            root = Path(tmp) / label
            for path in sorted(root.rglob("summary.json")):
                key = f"{label}/{'/'.join(path.parent.relative_to(root).parts[1:])}"
                found[key] = _numbers(json.loads(path.read_text()).get("metrics", {}))
    return found


def _numbers(metrics: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not any(t in k for t in VOLATILE)
    }


def differences(old: dict, new: dict, tolerance: float) -> list[str]:
    lines = []
    for run in sorted(set(old) | set(new)):
        if run not in old or run not in new:
            lines.append(f"{run}: only in {'the new' if run in new else 'the old'} figures")
            continue
        for key in sorted(set(old[run]) | set(new[run])):
            a, b = old[run].get(key), new[run].get(key)
            same = (
                a is not None
                and b is not None
                and (
                    (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance * max(1.0, abs(a))
                )
            )
            if not same:
                lines.append(f"{run}: {key} {a} -> {b}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default=",".join(STUDIES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    parser.add_argument("--against", type=Path, help="figures of the old code to compare with")
    parser.add_argument("--tolerance", type=float, default=0.0, help="relative; 0 means identical")
    args = parser.parse_args()
    found = run_all(args.studies.split(","), args.data_dir, args.threads)
    args.json.write_text(json.dumps(found, indent=1, sort_keys=True))
    print(
        f"[same_metrics] {len(found)} runs, {sum(map(len, found.values()))} figures -> {args.json}"
    )
    if args.against is None:
        return 0
    diff = differences(json.loads(args.against.read_text()), found, args.tolerance)
    print("\n".join(diff) if diff else "[same_metrics] every figure is identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
