"""Reports from saved run folders, without retraining: `replab report` and `replab compare`."""

from __future__ import annotations

from pathlib import Path

from replab.errors import ReplabError
from replab.io import atomic_write_text
from replab.reporting import write_run_report
from replab.reporting.compare import render_compare_html, render_compare_markdown
from replab.reporting.latent_figures import TSNE_FIGURE
from replab.runs import rundir, schema


def rebuild_report(run_dir: Path) -> Path:
    """Write ``report.html`` again from summary.json, figures/ and config.yaml."""
    run_dir = Path(run_dir)
    summary = rundir.read_summary(run_dir)
    summary_path = run_dir / rundir.SUMMARY
    figs = {}
    for i, fig in enumerate(summary.get("figures", [])):
        path = schema.contained(run_dir, fig["file"], summary_path, f"figures.{i}.file")
        if not path.is_file():
            raise ReplabError(
                f"figure {fig['file']!r} of {run_dir} is missing",
                "rerun the experiment to regenerate its figures",
            )
        figs[fig["name"]] = _read(path)
    config = _read(run_dir / rundir.CONFIG).decode("utf-8", errors="replace")
    rundir.read_spec(run_dir)  # the recipe it shows must be one replab can run (not built)
    hover = None
    hover_json = run_dir / rundir.FIGURES / rundir.HOVER_DATA
    if hover_json.is_file():
        fix = f"delete {hover_json} (the report then has no hover map), or rerun the experiment"
        data = schema.read_checked(schema.HoverMap, hover_json, fix)
        sprite = schema.contained(
            run_dir, f"{rundir.FIGURES}/{rundir.HOVER_SPRITE}", hover_json, "sprite"
        )
        if not sprite.is_file():
            raise ReplabError(f"{sprite} is missing", fix)
        hover = {**data, "sprite": _read(sprite)}
    return write_run_report(run_dir / rundir.REPORT, summary, figs, config, hover)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ReplabError(
            f"cannot read {path}: {err.strerror or err}", "check the run folder's permissions"
        ) from None


def compare_runs(
    run_dirs: list[Path], out: Path, plots: dict[str, bytes] | None = None
) -> tuple[Path, Path]:
    """Side-by-side table of runs, as ``out``.md and ``out``.html (with a study's ``plots``)."""
    if not run_dirs:
        raise ReplabError(
            "no run folders given", "pass one or more run folders, e.g. replab compare runs/*"
        )
    summaries = [(str(d), rundir.read_summary(d)) for d in run_dirs]
    md, html = Path(f"{out}.md"), Path(f"{out}.html")
    maps = []  # read (and checked) before anything is written
    for d, s in summaries:
        for i, f in enumerate(s.get("figures", [])):
            # the same containment as `replab report`: a summary may not name a file elsewhere
            path = schema.contained(
                Path(d), f["file"], Path(d) / rundir.SUMMARY, f"figures.{i}.file"
            )
            if f["name"] == TSNE_FIGURE and path.is_file():
                maps.append((s["name"], _read(path)))
    atomic_write_text(md, render_compare_markdown(summaries))
    atomic_write_text(html, render_compare_html(summaries, maps, plots))
    return md, html
