"""Wall time of whole studies, and how much of it is evaluation rather than training.

Two modes, combinable:

- run: ``replab study NAME [--quick]`` for each study in a subprocess (this checkout's
  replab, a fresh runs folder), timed from start to exit; then the study folder it wrote
  is analysed as below.
- ``--from STUDY_DIR`` (repeatable): analyse a study folder that already exists, e.g. a full
  profile run earlier (full profiles take hours on a CPU; nothing is written there).

The analysis reads every run's ``summary.json`` ``timings`` (seconds: ``data``, ``train``,
``probe``, ``analysis``, ``evaluation`` = probe + analysis, ``total``) and adds them up per
part and for the study. The issue's target: evaluation (probes, t-SNE, reports) under 20%
of a full study's time, checked here as ``(total - data - train) / total`` over all runs
(``eval_share``; ``outputs`` = ``total - data - train - evaluation`` is what falls between,
near 0 today because a run's ``total`` is taken before its figures and report are
written). Work outside the runs' timings (writing each run's figures and report, study D's
scikit-learn SVM, study E's Optuna search, the study report) shows as ``outside_runs_s``
when the wall time is known (run mode), and is not in ``eval_share``.

Run from the repository root::

    .venv/bin/python benchmarks/study_walltime.py --studies a,b,c,d,e,f   # quick profiles
    .venv/bin/python benchmarks/study_walltime.py --studies d --full      # full profile (long)
    .venv/bin/python benchmarks/study_walltime.py --from runs/study-a-mnist-20261123-131433
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, RESULTS, default_data_dir, disturbed_warning, environment, timed  # noqa: E402

from replab.studies.runner import catalogue  # noqa: E402

EVAL_TARGET = 0.20
STUDY_NAMES = tuple(name for name, _, _ in catalogue())  # every registered study
PARTS = ("data", "train", "probe", "analysis", "evaluation", "total")


def split(folder: Path) -> dict:
    """Training vs evaluation seconds of every run in a study folder, per part and in all."""
    runs = []
    for path in sorted(Path(folder).rglob("summary.json")):
        timings = json.loads(path.read_text()).get("timings")
        if not timings:
            continue
        t = {k: float(timings.get(k, 0.0)) for k in PARTS}
        t["outputs"] = max(0.0, t["total"] - t["data"] - t["train"] - t["evaluation"])
        rel = path.parent.relative_to(folder)
        runs.append({"run": str(rel), "part": rel.parts[0], **t})
    parts: dict[str, dict] = defaultdict(lambda: dict.fromkeys([*PARTS, "outputs"], 0.0))
    for r in runs:
        for k in (*PARTS, "outputs"):
            parts[r["part"]][k] += r[k]
    total = {k: sum(r[k] for r in runs) for k in (*PARTS, "outputs")}
    share = (
        (total["total"] - total["data"] - total["train"]) / total["total"]
        if total["total"]
        else None
    )
    settings = (
        json.loads((Path(folder) / "study.json").read_text())
        if (Path(folder) / "study.json").is_file()
        else {}
    )
    # The target is of full studies: a quick profile trains an epoch or two by design, so its
    # evaluation share says nothing about it.
    judged = share is not None and not settings.get("quick", False)
    return {
        "folder": str(folder),
        "settings": settings,
        "runs": runs,
        "parts": dict(parts),
        "total": total,
        "eval_share": share,
        "eval_target": EVAL_TARGET,
        "eval_passed": share < EVAL_TARGET if judged else None,
    }


def run_study(name: str, quick: bool, runs_dir: Path, data_dir: Path, log_dir: Path) -> dict:
    """``replab study NAME`` with this checkout's replab; returns its wall time and analysis."""
    study, _, dataset = name.partition(":")
    cmd = [
        sys.executable,
        "-c",
        "import sys; from replab.cli import main; sys.exit(main())",
        "study",
        study,
        *(["--dataset", dataset] if dataset else []),
        *(["--quick"] if quick else []),
        "--runs-dir",
        str(runs_dir),
        "--data-dir",
        str(data_dir),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
    }
    before = set(runs_dir.glob("study-*"))
    log = (
        log_dir
        / f"study-{study}{'-' + dataset if dataset else ''}-{'quick' if quick else 'full'}.log"
    )
    print(f"  replab study {' '.join(cmd[4:])}  (log: {log})", flush=True)
    with timed() as t, open(log, "w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    new = sorted(set(runs_dir.glob("study-*")) - before)
    row = {
        "study": name,
        "profile": "quick" if quick else "full",
        "wall_s": t.seconds,
        "returncode": rc,
        "cpu_used_elsewhere": t.other_share,
        "disturbed": t.disturbed,
        "log": str(log),
    }
    if rc != 0 or not new:
        print(
            f"    FAILED (exit {rc}); last lines of the log:\n"
            + "".join(log.read_text().splitlines(True)[-15:])
        )
        return row
    analysis = split(new[-1])
    analysis["outside_runs_s"] = t.seconds - analysis["total"]["total"]
    row["analysis"] = analysis
    return row


def print_split(label: str, a: dict, wall: float | None = None) -> None:
    tot = a["total"]
    print(f"\n{label}  ({a['folder']})")
    print(
        f"  {'part':<14}{'data s':>8}{'train s':>10}{'eval s':>9}{'total s':>9}{'eval share':>11}"
    )
    for part, t in a["parts"].items():
        share = (t["total"] - t["data"] - t["train"]) / t["total"] if t["total"] else 0.0
        print(
            f"  {part:<14}{t['data']:>8.1f}"
            f"{t['train']:>10.1f}{t['evaluation']:>9.1f}{t['total']:>9.1f}{share:>10.0%}"
        )
    if a["eval_share"] is not None:
        verdict = (
            "(a quick profile: the target is of full studies)"
            if a["eval_passed"] is None
            else f"(target < {EVAL_TARGET:.0%}) {'PASS' if a['eval_passed'] else 'FAIL'}"
        )
        print(
            f"  {'all runs':<14}{tot['data']:>8.1f}"
            f"{tot['train']:>10.1f}{tot['evaluation']:>9.1f}{tot['total']:>9.1f}"
            f"{a['eval_share']:>10.0%}  {verdict}"
        )
    if wall is not None:
        print(
            f"  wall {wall:.1f} s, of which outside the runs "
            f"(study-level work, report) {a.get('outside_runs_s', 0.0):.1f} s"
        )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--studies",
        default="",
        help=f"comma-separated studies to run, from {','.join(STUDY_NAMES)}; "
        "a:cifar10 passes --dataset cifar10 (default: none if --from is given, else all)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also run the full profiles (hours on a CPU); default quick only",
    )
    parser.add_argument(
        "--no-quick", action="store_true", help="skip the quick profiles (with --full: full only)"
    )
    parser.add_argument(
        "--from",
        dest="from_dirs",
        action="append",
        type=Path,
        default=[],
        metavar="STUDY_DIR",
        help="analyse an existing study folder (repeatable)",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="where the studies run (default: a temporary folder, deleted after)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="default $REPLAB_DATA, else ../shared/data",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS / "study_walltime.json",
        help="default benchmarks/results/study_walltime.json",
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.studies.split(",") if s.strip()] or (
        [] if args.from_dirs else list(STUDY_NAMES)
    )
    bad = [n for n in names if n.partition(":")[0] not in STUDY_NAMES]
    if bad:
        parser.error(f"unknown studies {bad}")
    args.studies = names
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    profiles = [p for p, on in ((True, not args.no_quick), (False, args.full)) if on]
    env = environment(profiles=["quick" if p else "full" for p in profiles])
    runs, analysed = [], []
    tmp = None if args.runs_dir else Path(tempfile.mkdtemp(prefix="replab_walltime_"))
    runs_dir = (args.runs_dir or tmp).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.json.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.studies:
            for quick in profiles:
                row = run_study(
                    name, quick, runs_dir, args.data_dir.expanduser().resolve(), log_dir
                )
                runs.append(row)
                print(
                    f"    {row['wall_s']:.1f} s wall ({row['cpu_used_elsewhere']:.0%} "
                    f"busy elsewhere{', DISTURBED' if row['disturbed'] else ''})",
                    flush=True,
                )
                if "analysis" in row:
                    print_split(f"study {name} ({row['profile']})", row["analysis"], row["wall_s"])
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    for folder in args.from_dirs:
        a = split(folder.expanduser().resolve())
        analysed.append(a)
        s = a["settings"]
        print_split(
            f"study {s.get('study', '?')} "
            f"({'quick' if s.get('quick') else 'full'}, seeds {s.get('seeds')})",
            a,
        )
    if runs:
        print(f"\n{'study':<12}{'profile':<8}{'wall s':>9}{'eval share':>12}  disturbed")
        for r in runs:
            share = r.get("analysis", {}).get("eval_share")
            print(
                f"{r['study']:<12}{r['profile']:<8}"
                f"{r['wall_s']:>9.1f}{'' if share is None else f'{share:.0%}':>12} "
                f" {'YES' if r['disturbed'] else 'no'}"
            )
        warning = disturbed_warning(
            [f"{r['study']} ({r['profile']})" for r in runs if r["disturbed"]]
        )
        if warning:
            print(warning)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"environment": env, "runs": runs, "from": analysed}, indent=2, default=str)
        + "\n"
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
