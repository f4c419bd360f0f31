"""Self-contained HTML reports: one file, figures embedded, user strings escaped."""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2

from replab.io import atomic_write_text

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("replab.reporting", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)


# The interactive latent map's colours, one per class (cycling past ten), shared by the points the
# page's script draws and the legend beside them: matplotlib's tab10, as the static t-SNE maps.
LATENT_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def metric_rows(metrics: dict[str, float], reference: dict[str, float]) -> list[dict]:
    """One row per metric, with the published figure and the gap where there is one."""
    rows = []
    for name in list(dict.fromkeys([*reference, *metrics])):
        value, ref = metrics.get(name), reference.get(name)
        rows.append(
            {
                "name": name,
                "value": fmt(value),
                "reference": fmt(ref),
                "delta": fmt(value - ref, signed=True)
                if value is not None and ref is not None
                else "",
            }
        )
    return rows


def render_run_report(
    summary: dict, figures: dict[str, bytes], config_yaml: str, hover: dict | None = None
) -> str:
    if hover is not None:
        hover = {**hover, "sprite": data_uri(hover["sprite"]), "colors": list(LATENT_COLORS)}
    return ENV.get_template("run.html.j2").render(
        summary=summary,
        hover=hover,
        rows=metric_rows(summary["metrics"], summary.get("reference", {})),
        figures=[{"name": name, "src": data_uri(png)} for name, png in figures.items()],
        config_yaml=config_yaml,
    )


def write_run_report(
    path: Path,
    summary: dict,
    figures: dict[str, bytes],
    config_yaml: str,
    hover: dict | None = None,
) -> Path:
    atomic_write_text(path, render_run_report(summary, figures, config_yaml, hover))
    return path


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.4g}" if signed else f"{value:.4g}"
