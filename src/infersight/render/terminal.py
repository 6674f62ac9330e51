"""Rich terminal view of an :class:`AnalysisReport` (what ``infersight analyze`` prints).

It only lays out the cells built in :mod:`infersight.render.sections`, so the terminal and the
Markdown report show the same figures.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from infersight.analysis_report import AnalysisReport
from infersight.render.attribution import attribution_section, breakdown_section, primary_line
from infersight.render.findings import print_findings
from infersight.render.sanitize import sanitizing_console
from infersight.render.sections import (
    CPU_CAPTURE_WARNING,
    categories_section,
    devices_section,
    gaps_section,
    has_cpu_capture,
    kernels_section,
    phases_section,
    ranges_section,
    traces_section,
    transfers_section,
)
from infersight.render.tables import print_section
from infersight.render.theory import report_sections as theory_sections

DEFAULT_TOP = 15


def render_terminal(report: AnalysisReport, console: Console, *, top: int = DEFAULT_TOP) -> None:
    """Print the whole report to ``console``."""
    console.print(
        Text.assemble(
            ("infersight ", "bold"),
            f"{report.tool_version}  ·  report schema {report.schema_version}",
        )
    )
    verdict = primary_line(report)
    if verdict is not None:
        console.print(Text(verdict, style="bold"))
    if has_cpu_capture(report):
        console.print(Panel(Text(CPU_CAPTURE_WARNING), title="CPU capture", border_style="bold magenta"))
    for section in (
        attribution_section(report),
        breakdown_section(report),
        traces_section(report),
        devices_section(report),
        transfers_section(report),
        gaps_section(report),
        categories_section(report),
        kernels_section(report, top),
        ranges_section(report, top),
        phases_section(report),
        *theory_sections(report),
    ):
        print_section(console, section)
    print_findings(console, report.findings)


def render_terminal_text(report: AnalysisReport, *, top: int = DEFAULT_TOP, width: int = 200) -> str:
    """The terminal report as plain text (no colour) — for tests and for piping."""
    buffer = io.StringIO()
    console = sanitizing_console(
        file=buffer, width=width, color_system=None, force_terminal=False, markup=False
    )
    render_terminal(report, console, top=top)
    return buffer.getvalue()
