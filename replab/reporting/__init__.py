"""Reporting: figures and self-contained HTML reports."""

from replab.reporting.html import render_run_report, write_run_report

__all__ = ["render_run_report", "write_run_report"]
