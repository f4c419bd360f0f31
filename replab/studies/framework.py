"""A study: several recipes run as named parts over seeds, gathered into one report.

A study module (``study_a.py``...) says *what* to run — parts and sweeps, with a quick
profile for each — and what to conclude; ``StudyRun`` does the running. Every run has a
fixed folder inside the study folder (``A1/seed0``, ``B1/latent_dim=300-seed0``), so a study
run again with ``--resume`` reuses finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from replab.errors import ConfigError, ReplabError
from replab.io import atomic_write_json, write_error
from replab.recipes import read_recipe
from replab.registry import Registry
from replab.runs import rundir, schema
from replab.runs.lifecycle import run_or_reuse
from replab.runs.pool import RunPool
from replab.search.sweep import SEED, Axis, Point, aggregate, mean_and_std, start_grid
from replab.spec import apply_override, validate_spec, with_overrides

STUDIES = Registry("study")
STUDY_FILE = "study.json"


class Part:
    """One recipe run over the study's seeds.

    Under ``--jobs`` its runs may still be training: ``run_dirs`` and ``summaries`` wait for
    them, so study code that reads a part (or starts from its runs' weights) runs after it,
    and parts that do not read each other train at the same time.
    """

    def __init__(
        self,
        key: str,
        title: str,
        run_dirs: list[Path],
        summaries: list[dict] | None,
        reference: dict[str, float | None],  # None: no published figure for this setting
        wait: Callable[[], list[dict]] | None = None,
    ) -> None:
        self.key, self.title, self.reference = key, title, reference
        self._run_dirs, self._summaries, self._wait = run_dirs, summaries or [], wait

    def _resolve(self) -> None:
        if self._wait is not None:
            self._summaries, self._wait = self._wait(), None

    @property
    def run_dirs(self) -> list[Path]:
        self._resolve()
        return self._run_dirs

    @property
    def summaries(self) -> list[dict]:
        self._resolve()
        return self._summaries

    def values(self, metric: str) -> list[float]:
        return [s["metrics"][metric] for s in self.summaries if metric in s["metrics"]]

    def mean(self, metric: str) -> float | None:
        return mean_and_std(self.values(metric))[0]

    def reported_mean(self, metric: str) -> float:
        """``mean(metric)`` of a metric every run reports (KeyError if none did)."""
        mean = self.mean(metric)
        if mean is None:
            raise KeyError(f"no run of {self.key} reported {metric!r}")
        return mean

    def std(self, metric: str) -> float:
        return mean_and_std(self.values(metric))[1] or 0.0

    @property
    def seconds(self) -> float:
        return sum(s["timings"]["total"] for s in self.summaries)

    @property
    def data(self) -> str:
        return self.summaries[0]["data"]

    def figure(self, prefix: str) -> bytes | None:
        """The first figure of the first seed's run whose name starts with ``prefix``."""
        return run_figure(self.run_dirs[0], self.summaries[0], prefix)


class Sweep:
    """A grid run as one part; under ``--jobs`` ``records`` and ``points`` wait for its runs."""

    def __init__(
        self,
        key: str,
        title: str,
        wait: Callable[[], list[dict]],
        folder: Path,
        reference: dict[str, float],
    ) -> None:
        self.key, self.title, self.folder, self.reference = key, title, folder, reference
        self._wait: Callable[[], list[dict]] | None = wait
        self._records: list[dict] = []
        self._points: list[Point] = []

    def _resolve(self) -> None:
        if self._wait is not None:
            self._records, self._wait = self._wait(), None
            self._points = aggregate(self._records)

    @property
    def records(self) -> list[dict]:
        self._resolve()
        return self._records

    @property
    def points(self) -> list[Point]:
        self._resolve()
        return self._points

    @property
    def seconds(self) -> float:
        return sum(r["seconds"] for r in self.records)

    def point(self, **values) -> Point | None:
        """The point whose axes (by last key segment) have ``values``,
        e.g. point(latent_dim=300)."""
        for p in self.points:
            named = {k.split(",")[0].split(".")[-1]: v for k, v in p.values.items()}
            if all(named.get(k) == v for k, v in values.items()):
                return p
        return None


@dataclass
class StudyRun:
    folder: Path
    quick: bool
    seeds: list[int]
    data_root: str | None = None
    log: Callable[[str], None] = print
    # "PART:key=value" from --override; "*:key=value" for all
    user_overrides: list[str] = field(default_factory=list)
    # --jobs N: the runs go to N worker processes (replab/runs/pool.py); None trains them here
    pool: RunPool | None = None

    def config(self, recipe: str, overrides: list[str], quick: list[str], part: str = "*") -> dict:
        raw = with_overrides(
            read_recipe(recipe),
            [*overrides, *(quick if self.quick else []), *self.overrides_for(part)],
        )
        if self.data_root:
            apply_override(raw, f"data.root={json.dumps(self.data_root)}")
        return raw

    def overrides_for(self, part: str) -> list[str]:
        out = []
        for item in self.user_overrides:
            target, _, override = item.partition(":")
            if target in ("*", part) or (part != "*" and part.startswith(f"{target}.")):
                out.append(override)
        return out

    def part(
        self,
        key: str,
        title: str,
        recipe: str,
        overrides: Sequence[str] = (),
        quick: Sequence[str] = (),
        per_seed=None,
    ) -> Part:
        """Run ``recipe`` once per seed (or reuse the finished runs) as part ``key``.

        ``per_seed(seed)`` gives overrides that differ by seed (as in ``sweep``), e.g. the
        earlier part's run of the same seed to start from.
        """
        raw = self.config(recipe, list(overrides), list(quick), key)
        specs = [
            validate_spec({**with_overrides(raw, per_seed(seed) if per_seed else []), "seed": seed})
            for seed in self.seeds
        ]
        self.log(f"== {key}: {title} ({len(specs)} seed{'s' * (len(specs) > 1)})")
        dirs = [self.folder / key / f"seed{s.seed}" for s in specs]
        reference = dict(raw.get("report", {}).get("reference", {}))
        if self.pool is not None:
            pool = self.pool
            queued = [
                (pool.submit(spec, d, f"{key}/{d.name}"), d)
                for spec, d in zip(specs, dirs, strict=True)
            ]
            return Part(
                key, title, dirs, None, reference, lambda: [pool.result(f, d) for f, d in queued]
            )
        start = time.perf_counter()
        summaries = [
            run_or_reuse(spec, d, log=self.log) for spec, d in zip(specs, dirs, strict=True)
        ]
        part = Part(key, title, dirs, summaries, reference)
        self.log(
            f"== {key} done: {part.seconds:.1f} s of training and evaluation "
            f"({time.perf_counter() - start:.1f} s wall)"
        )
        return part

    def sweep(
        self,
        key: str,
        title: str,
        recipe: str,
        axes: list[Axis],
        overrides: Sequence[str] = (),
        quick: Sequence[str] = (),
        per_seed=None,
    ) -> Sweep:
        """Run the grid of ``axes`` (times the study's seeds) as part ``key``.

        ``per_seed(seed)`` gives overrides that differ by seed, e.g. the pretext run of the
        same seed to transfer from, so each seed's runs build on that seed's earlier parts.
        """
        raw = self.config(recipe, list(overrides), list(quick), key)
        self.log(f"== {key}: {title}")
        start = time.perf_counter()
        seeds = [list(self.seeds)] if per_seed is None else [[seed] for seed in self.seeds]
        waits = [
            start_grid(
                raw,
                [*axes, Axis([SEED], group)],
                per_seed(group[0]) if per_seed else [],
                self.folder / key,
                log=self.log,
                pool=self.pool,
            )
            for group in seeds
        ]
        result = Sweep(
            key,
            title,
            lambda: [r for wait in waits for r in wait()],
            self.folder / key,
            dict(raw.get("report", {}).get("reference", {})),
        )
        if self.pool is None:
            self.log(
                f"== {key} done: {result.seconds:.1f} s of training and evaluation "
                f"({time.perf_counter() - start:.1f} s wall)"
            )
        return result


def run_figure(run_dir: Path, summary: dict, prefix: str) -> bytes | None:
    for fig in summary.get("figures", []):
        if fig["name"].startswith(prefix) and (Path(run_dir) / fig["file"]).is_file():
            return (Path(run_dir) / fig["file"]).read_bytes()
    return None


def reference_rows(parts: Sequence[Part | Sweep]) -> list[dict]:
    """Reference figures beside replab's (mean ± std over seeds), one row per (part, metric)."""
    out = []
    for part in parts:
        if isinstance(part, Part):
            for metric, ref in part.reference.items():
                out.append(reference_row(part.key, metric, ref, part.values(metric)))
    return out


def reference_row(part: str, metric: str, reference: float | None, values: list[float]) -> dict:
    mean, std = mean_and_std(values)
    return {
        "part": part,
        "metric": metric,
        "reference": reference,
        "mean": mean,
        "std": std,
        "n": len(values),
        "values": [float(v) for v in values],  # seed order: what benchmarks/fidelity.py reads
        "delta": None if mean is None or reference is None else mean - reference,
    }


# Reference figures that do not depend on the data a run trained on.
DATA_FREE = ("parameters",)


def mark_incomparable(folder: Path, rows: list[dict]) -> None:
    """Give each reference row whose part ran on other data than the reference was measured on
    (a --quick profile's data.limit_train, another dataset) the runs' note, in place."""
    notes: dict[str, str | None] = {}
    for row in rows:
        if str(row["metric"]).split(".")[0] in DATA_FREE:
            continue  # a parameter count is the same figure on any data
        part = str(row["part"])
        if part not in notes:
            notes[part] = _part_note(Path(folder) / part)
        if notes[part] and not row.get("note"):
            row["note"] = notes[part]


def _part_note(part_dir: Path) -> str | None:
    if not part_dir.is_dir():
        return None
    for summary_file in sorted(part_dir.glob(f"*/{rundir.SUMMARY}")):
        try:
            note = rundir.read_summary(summary_file.parent).get("reference_note")
        except ReplabError:
            continue
        if note:
            return str(note)
    return None


def open_study(folder: Path) -> dict:
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        raise ReplabError(
            f"{str(folder)!r} is not a study folder (no {STUDY_FILE})",
            "pass a folder written by `replab study`",
        )
    return schema.read_checked(
        schema.StudySettings, path, "restore the file, or start the study again in a new folder"
    )


def check_overrides(overrides: list[str]) -> None:
    for item in overrides:
        target, sep, override = item.partition(":")
        if not sep or not target or "=" not in override:
            raise ConfigError(
                f"--override {item!r} is not of the form PART:key.path=value",
                "write e.g. --override A3:trainer.epochs=15 "
                "(PART is a part such as A3 or B4, or * for every part)",
            )


def _grow_seeds(folder: Path, settings: dict, seeds: int) -> None:
    """More seeds for a study: the runs of the seeds it has are kept and reused."""
    have = settings["seeds"]
    if seeds < len(have):
        raise ConfigError(
            f"--seeds {seeds}: the study in {folder} already has {len(have)} seeds, "
            "and a study does not drop runs",
            f"resume without --seeds, or with --seeds {len(have)} or more",
        )
    settings["seeds"] = [*have, *range(max(have) + 1, max(have) + 1 + seeds - len(have))]
    atomic_write_json(folder / STUDY_FILE, settings)


def start_study(
    name: str | None,
    params: dict,
    quick: bool,
    seeds: int | None,
    runs_dir: Path,
    data_root: str | None,
    resume: Path | None,
    overrides: Sequence[str] = (),
) -> tuple[Path, dict]:
    """The study folder and its settings: new, or read back from ``resume``
    (grown to ``seeds`` if given)."""
    if seeds is not None and not 1 <= seeds <= 100:
        raise ConfigError(f"--seeds {seeds} is out of range", "use between 1 and 100 seeds")
    if resume:
        settings = open_study(resume)
        if seeds is not None and seeds != len(settings["seeds"]):
            _grow_seeds(Path(resume), settings, seeds)
        return Path(resume), settings
    seeds = 1 if seeds is None else seeds
    check_overrides(list(overrides))
    suffix = "-".join(str(v) for v in params.values())
    stem = rundir.safe_name(
        f"study-{name}{'-' + suffix if suffix else ''}{'-quick' if quick else ''}"
    )
    folder = Path(runs_dir) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        folder.mkdir(parents=True)
    except OSError as err:  # a --runs-dir that is a file, or not writable
        raise write_error(folder, err) from None
    settings = {
        "study": name,
        "params": params,
        "quick": quick,
        "seeds": list(range(seeds)),
        "data_root": data_root,
        "overrides": list(overrides),
    }
    atomic_write_json(folder / STUDY_FILE, settings)
    return folder, settings
