"""A side-by-side table of several runs, in Markdown and HTML."""

from __future__ import annotations

from replab.reporting.html import ENV, data_uri, fmt

FIXED = ("run", "data", "epochs", "seed", "train s")


def compare_table(summaries: list[tuple[str, dict]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: fixed columns, then every metric any run reported (reference row first)."""
    metrics = list(dict.fromkeys(m for _, s in summaries for m in s["metrics"]))
    header = [*FIXED, *metrics]
    references = {
        m: v
        for _, s in summaries
        for m, v in s.get("reference", {}).items()
        if m in metrics and v is not None
    }
    rows = []
    if references:
        rows.append(["reference", "", "", "", "", *(fmt(references.get(m)) for m in metrics)])
    for _path, s in summaries:
        fixed = [
            s["name"],
            s.get("data", ""),
            str(s.get("epochs", "")),
            str(s.get("seed", "")),
            fmt(s.get("timings", {}).get("train")),
        ]
        rows.append([*fixed, *(fmt(s["metrics"].get(m)) for m in metrics)])
    return header, rows


def render_compare_markdown(summaries: list[tuple[str, dict]]) -> str:
    header, rows = compare_table(summaries)
    cell = lambda text: text.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_compare_html(
    summaries: list[tuple[str, dict]],
    maps: list[tuple[str, bytes]] | None = None,
    plots: dict[str, bytes] | None = None,
) -> str:
    """The table, a study's per-metric plots, then each run's latent map in a
    row (``maps``: run name, PNG)."""
    header, rows = compare_table(summaries)
    shown = [{"name": name, "src": data_uri(png)} for name, png in maps or []]
    charts = [{"name": name, "src": data_uri(png)} for name, png in (plots or {}).items()]
    return ENV.get_template("compare.html.j2").render(
        header=header, rows=rows, paths=[p for p, _ in summaries], maps=shown, plots=charts
    )
