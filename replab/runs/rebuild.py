"""Reports from saved run folders, without retraining: `replab report` and `replab compare`."""

from __future__ import annotations

import json
from pathlib import Path

from replab.errors import ReplabError
from replab.io import atomic_write_text
from replab.reporting import write_run_report
from replab.reporting.compare import render_compare_html, render_compare_markdown
from replab.reporting.latent_figures import TSNE_FIGURE
from replab.runs import rundir


def rebuild_report(run_dir: Path) -> Path:
    """Write ``report.html`` again from summary.json, figures/ and config.yaml."""
    run_dir = Path(run_dir)
    summary = rundir.read_summary(run_dir)
    figs = {}
    for fig in summary.get("figures", []):
        path = run_dir / fig["file"]
        if not path.is_file() or path.resolve().parent != (run_dir / rundir.FIGURES).resolve():
            raise ReplabError(
                f"figure {fig['file']!r} of {run_dir} is missing",
                "rerun the experiment to regenerate its figures",
            )
        figs[fig["name"]] = path.read_bytes()
    config = (run_dir / rundir.CONFIG).read_text(encoding="utf-8")
    hover = None
    hover_json = run_dir / rundir.FIGURES / rundir.HOVER_DATA
    if hover_json.is_file():
        hover = {
            **json.loads(hover_json.read_text(encoding="utf-8")),
            "sprite": (run_dir / rundir.FIGURES / rundir.HOVER_SPRITE).read_bytes(),
        }
    return write_run_report(run_dir / rundir.REPORT, summary, figs, config, hover)


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
    atomic_write_text(md, render_compare_markdown(summaries))
    maps = [
        (s["name"], (Path(d) / f["file"]).read_bytes())
        for d, s in summaries
        for f in s.get("figures", [])
        if f["name"] == TSNE_FIGURE and (Path(d) / f["file"]).is_file()
    ]
    atomic_write_text(html, render_compare_html(summaries, maps, plots))
    return md, html
