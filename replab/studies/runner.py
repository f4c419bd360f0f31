"""`replab study NAME`: run a registered study end to end and write its report.

``catalogue()`` lists the registered studies with their one-line titles and options, which
is where ``replab study --help`` takes them from.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replab.errors import ReplabError
from replab.io import Log, folder_lock
from replab.registry import check_code, discover, saved_folder
from replab.reporting.study_report import StudyReport, write_study_report
from replab.runs.pool import check_jobs, pooled
from replab.runs.rundir import CONFIG
from replab.runs.tracking import parent_run
from replab.spec import override_code_names
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
    log: Log = print,
    jobs: int = 1,
    trust_code: bool = False,
) -> tuple[Path, StudyReport, float]:
    """Run (or resume) study ``name``; returns the study folder, its report
    and the wall time in seconds. ``name`` may be None only with ``resume``. ``jobs`` runs
    train at once in worker processes, each part after the parts it reads.

    A folder to ``resume`` is data: code that its study.json (or a run folder in it) names by
    import path is refused unless ``trust_code``. A new study's folders hold only what the
    user passed this time, so the study reads them back as trusted."""
    check_jobs(jobs)
    study: Any = None
    if resume is None:
        if name is None:
            raise ReplabError("which study? none was named", "name a study, or resume one")
        # validate the options before creating a folder
        study = STUDIES.build(name, params, where=f"study {name!r}")
    # the folders a new study makes, removed again if it fails before its first part ran
    made = (
        [] if resume else [p for p in (Path(runs_dir), *Path(runs_dir).parents) if not p.exists()]
    )
    begun: list[Path] = []
    try:
        return _held(
            study, name, params, quick, seeds, runs_dir, data_root, resume, overrides, log,
            jobs, trust_code, begun,
        )  # fmt: skip
    except ReplabError:
        if resume is None and begun and not _any_part_began(begun[0]):
            # missing data, say: nothing ran, so leave no empty study folder behind
            shutil.rmtree(begun[0], ignore_errors=True)
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
        raise


def _any_part_began(folder: Path) -> bool:
    """Whether a part of the study left a run folder (its config.yaml) in ``folder``."""
    return any(folder.rglob(CONFIG))


def _held(
    study: Any,
    name: str | None,
    params: dict,
    quick: bool,
    seeds: int | None,
    runs_dir: Path,
    data_root: str | None,
    resume: Path | None,
    overrides: Sequence[str],
    log: Log,
    jobs: int,
    trust_code: bool,
    begun: list[Path],
) -> tuple[Path, StudyReport, float]:
    """``run_study`` holding the study folder's lock; ``begun`` gets the folder once made."""
    with contextlib.ExitStack() as held:
        if resume is not None:
            # one process at a time continues a study: it writes study.json and its run folders
            saved = open_study(resume)  # a clear error before a lock file is made in a stray folder
            check_code(study_code(saved), f"the study folder {str(resume)!r}", trust_code)
            held.enter_context(folder_lock(resume, "study"))
        folder, settings = start_study(
            name, params, quick, seeds, runs_dir, data_root, resume, overrides
        )
        begun.append(folder)
        trusted = trust_code or resume is None  # a new study's folder holds what was passed
        held.enter_context(saved_folder(f"the study folder {str(folder)!r}", trusted))
        if resume is None:
            held.enter_context(folder_lock(folder, "study"))
        try:
            return _run_study(folder, settings, study, log, jobs)
        except KeyboardInterrupt as err:
            # Ctrl-C: the study, not the part's run folder, is what to continue
            err.replab_resume = (  # type: ignore[attr-defined]
                str(folder),
                f"replab study --resume {folder}",
            )
            raise


def _run_study(
    folder: Path, settings: dict, study, log: Log, jobs: int = 1
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


def study_code(settings: dict) -> list[str]:
    """``key=package.module:Name`` for what a study's settings (study.json) name by import
    path: the study itself, any option value holding a ``:``, and the components, datasets...
    its ``PART:key=value`` overrides set."""
    found = [f"study={settings['study']}"] if ":" in str(settings.get("study")) else []

    def walk(value: object, at: str) -> None:
        if isinstance(value, str) and ":" in value:
            found.append(f"{at}={value}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{at}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{at}.{i}")

    walk(settings.get("params") or {}, "params")
    for item in settings.get("overrides") or []:
        target, _, override = str(item).partition(":")
        found += [f"{target}:{name}" for name in override_code_names([override])]
    return found


def catalogue() -> list[tuple[str, str, list[str]]]:
    """(name, title, option names) of every registered study; the title is its docstring's
    summary (first paragraph; a summary wrapped over several lines is joined into one)."""
    rows = []
    for name in STUDIES.names():
        summary = (STUDIES.get(name).__doc__ or "").strip().split("\n\n")[0]
        rows.append((name, " ".join(summary.split()).rstrip("."), list(STUDIES.signature(name))))
    return rows
