"""`replab study NAME`: run a registered study end to end and write its report.

``catalogue()`` lists the registered studies with their one-line titles and options, which
is where ``replab study --help`` takes them from.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from replab.errors import ReplabError
from replab.io import folder_lock
from replab.registry import discover
from replab.reporting.study_report import StudyReport, write_study_report
from replab.runs.pool import check_jobs, pooled
from replab.runs.tracking import parent_run
from replab.studies.framework import (
    STUDIES,
    StudyRun,
    mark_incomparable,
    open_study,
    start_study,
)

# Each study_<name>.py registers itself: a new study is one new file (plus its test).
discover("replab.studies", prefix="study_")


def run_study(
    name: str | None,
    params: dict,
    quick: bool = False,
    seeds: int | None = None,
    runs_dir: Path = Path("runs"),
    data_root: str | None = None,
    resume: Path | None = None,
    overrides: Sequence[str] = (),
    log=print,
    jobs: int = 1,
) -> tuple[Path, StudyReport, float]:
    """Run (or resume) study ``name``; returns the study folder, its report
    and the wall time in seconds. ``name`` may be None only with ``resume``. ``jobs`` runs
    train at once in worker processes, each part after the parts it reads."""
    check_jobs(jobs)
    if resume is None:
        if name is None:
            raise ReplabError("which study? none was named", "name a study, or resume one")
        # validate the options before creating a folder
        study = STUDIES.build(name, params, where=f"study {name!r}")
    with contextlib.ExitStack() as held:
        if resume is not None:
            # one process at a time continues a study: it writes study.json and its run folders
            open_study(resume)  # a clear error before a lock file is made in a stray folder
            held.enter_context(folder_lock(resume, "study"))
        folder, settings = start_study(
            name, params, quick, seeds, runs_dir, data_root, resume, overrides
        )
        if resume is None:
            held.enter_context(folder_lock(folder, "study"))
        try:
            return _run_study(folder, settings, study if resume is None else None, log, jobs)
        except KeyboardInterrupt as err:
            # Ctrl-C: the study, not the part's run folder, is what to continue
            err.replab_resume = (  # type: ignore[attr-defined]
                str(folder),
                f"replab study --resume {folder}",
            )
            raise


def _run_study(
    folder: Path, settings: dict, study, log, jobs: int = 1
) -> tuple[Path, StudyReport, float]:
    if study is None:
        study = STUDIES.build(
            settings["study"], settings["params"], where=f"study {settings['study']!r}"
        )
    start = time.perf_counter()
    params = {"study": settings["study"], **settings["params"], "quick": settings["quick"]}
    with (
        parent_run(folder, "study", str(settings["study"]), params, log) as parent,
        pooled(jobs, log) as pool,
    ):
        run = StudyRun(
            folder,
            settings["quick"],
            settings["seeds"],
            settings["data_root"],
            log,
            settings.get("overrides", []),
            pool,
        )
        report = study.run(run)
        mark_incomparable(folder, report.reference)
        html, md = write_study_report(folder, report)
        figures = {f"{s.title}: {n}": png for s in report.sections for n, png in s.figures.items()}
        parent.finish(figures, [html, md])
    wall = time.perf_counter() - start
    log(f"study report: {html} ({wall:.1f} s)")
    return folder, report, wall


def catalogue() -> list[tuple[str, str, list[str]]]:
    """(name, title, option names) of every registered study; the title is its docstring's
    summary (first paragraph; a summary wrapped over several lines is joined into one)."""
    rows = []
    for name in STUDIES.names():
        summary = (STUDIES.get(name).__doc__ or "").strip().split("\n\n")[0]
        rows.append((name, " ".join(summary.split()).rstrip("."), list(STUDIES.signature(name))))
    return rows
