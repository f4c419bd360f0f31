"""A study's report: the reference table beside replab's figures, then one section per question.

Written as ``study.html`` (self-contained, figures embedded) and ``study.md`` (the same
tables and text, figures linked from ``figures/``), plus ``study-summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from replab.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from replab.reporting.html import ENV, data_uri, fmt


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    columns: int = 1


@dataclass
class StudyReport:
    title: str
    question: str
    settings: dict[str, str]  # shown as a definition list: data, device, profile, seeds...
    reference: list[dict]  # rows: part, metric, reference, mean, std, n, delta
    timings: list[tuple[str, str, float]]  # (part, title, seconds)
    sections: list[Section] = field(default_factory=list)
    source: str = ""


def format_mean_std(mean: float | None, std: float | None, digits: int = 4) -> str:
    """``digits`` significant digits: 0.001462, 0.9746 and 149 all read naturally."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}g}" if std is None else f"{mean:.{digits}g} ± {std:.2g}"


def _reference_cells(row: dict) -> list[str]:
    cells = _cells(row)
    if row.get("note"):  # measured on other data: no difference to show
        cells[-1] = str(row["note"])
    return cells


def _cells(row: dict) -> list[str]:
    if all(_is_count(row[k]) for k in ("reference", "mean")) and not row["std"]:
        # counts such as parameters (797,984) read exactly, not as 7.98e+05
        return [
            row["part"],
            row["metric"],
            f"{int(row['reference']):,}",
            f"{int(row['mean']):,}",
            str(row["n"]),
            f"{int(row['delta']):+,}",
        ]
    return [
        row["part"],
        row["metric"],
        fmt(row["reference"]) or "—",
        format_mean_std(row["mean"], row["std"]),
        str(row["n"]),
        fmt(row["delta"], signed=True) or "—",
    ]


def _is_count(value: float | None) -> bool:
    return value is not None and float(value).is_integer() and abs(value) >= 10_000


REFERENCE_HEADER = ["part", "metric", "reference", "replab (mean ± std)", "seeds", "Δ"]


def reference_markdown(rows: list[dict]) -> str:
    """The reference table as Markdown (the report's and the terminal's)."""
    return "\n".join(_md_table(REFERENCE_HEADER, [_reference_cells(r) for r in rows]))


def write_study_report(folder: Path, report: StudyReport) -> tuple[Path, Path]:
    folder = Path(folder)
    names = []
    for i, section in enumerate(report.sections):
        for j, (name, png) in enumerate(section.figures.items()):
            file = f"figures/{i:02d}-{j:02d}.png"
            atomic_write_bytes(folder / file, png)
            names.append((section.title, name, file))
    html = ENV.get_template("study.html.j2").render(
        r=report,
        reference=[_reference_cells(row) for row in report.reference],
        header=REFERENCE_HEADER,
        sections=[
            {"s": s, "figures": [{"name": n, "src": data_uri(p)} for n, p in s.figures.items()]}
            for s in report.sections
        ],
        total=sum(t[2] for t in report.timings),
    )
    atomic_write_text(folder / "study.html", html)
    atomic_write_text(folder / "study.md", _markdown(report, names))
    atomic_write_json(
        folder / "study-summary.json",
        {
            "title": report.title,
            "settings": report.settings,
            "reference": report.reference,
            "timings": [{"part": p, "title": t, "seconds": s} for p, t, s in report.timings],
        },
    )
    return folder / "study.html", folder / "study.md"


def _markdown(report: StudyReport, figures: list[tuple[str, str, str]]) -> str:
    lines = [f"# {report.title}", "", report.question, ""]
    lines += [f"- **{k}**: {v}" for k, v in report.settings.items()]
    if report.reference:  # a study of replab's own (g, ssl without figures) has none
        lines += [
            "",
            "## Reference figures beside replab's",
            "",
            reference_markdown(report.reference),
        ]
    lines += [
        "",
        "## Time per part",
        "",
        *_md_table(["part", "what", "seconds"], [[p, t, f"{s:.1f}"] for p, t, s in report.timings]),
    ]
    for section in report.sections:
        lines += ["", f"## {section.title}", "", *section_markdown(section)]
        lines += [f"![{name}]({file})" for title, name, file in figures if title == section.title]
    return "\n".join(lines) + "\n"


def section_markdown(section: Section) -> list[str]:
    """A section's paragraphs and table as Markdown lines (its figures are files)."""
    lines = []
    for paragraph in section.text:
        lines += [paragraph, ""]
    return lines + (_md_table(*section.table) if section.table else [])


def table_markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(_md_table(header, rows))


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
