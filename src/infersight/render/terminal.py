"""Rich terminal view of an :class:`AnalysisReport` (what ``infersight analyze`` prints).

It only lays out the cells built in :mod:`infersight.render.sections`, so the terminal and the
Markdown report show the same figures.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from infersight.analyses.results import AnalysisReport
from infersight.render.attribution import attribution_section, breakdown_section, primary_line
from infersight.render.findings import print_findings
from infersight.render.sanitize import sanitizing_console
from infersight.render.sections import (
    CPU_CAPTURE_WARNING,
    Section,
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
from infersight.render.theory import report_sections as theory_sections

DEFAULT_TOP = 15
MIN_NAME_WIDTH = 32
MIN_TEXT_WIDTH = 8


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
        _print_section(console, section)
    print_findings(console, report.findings)


def render_terminal_text(report: AnalysisReport, *, top: int = DEFAULT_TOP, width: int = 200) -> str:
    """The terminal report as plain text (no colour) — for tests and for piping."""
    buffer = io.StringIO()
    console = sanitizing_console(
        file=buffer, width=width, color_system=None, force_terminal=False, markup=False
    )
    render_terminal(report, console, top=top)
    return buffer.getvalue()


def _print_section(console: Console, section: Section) -> None:
    console.print()
    if not section.rows:
        detail = " — none in this trace"
        if section.empty_reason:
            detail += f" ({section.empty_reason})"
        console.print(Text(section.title, style="bold"), Text(detail, style="dim"))
        return
    # Pick the roomiest layout that fits, so rich never crops values away on narrow terminals:
    # 0 = numbers on one line and names readable; 1 = text wraps freely; 2 = everything folds.
    level = next((lv for lv in (0, 1) if _needed_width(section, lv) <= console.width), 2)
    console.print(_build_table(section, level))
    _print_notes(console, section.notes)


def _build_table(section: Section, level: int) -> Table:
    table = Table(title=section.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for index, header in enumerate(section.headers):
        numeric = index in section.right_aligned
        wraps = level == 2 or (not numeric and level == 1) or index in section.wrapping
        min_width = None
        if level == 0 and index in section.wrapping:  # a name column keeps room for a short name
            min_width = _widest_line([header] + [row[index] for row in section.rows], MIN_NAME_WIDTH)
        if numeric:
            table.add_column(header, justify="right", no_wrap=not wraps, overflow="fold", min_width=min_width)
        else:
            table.add_column(header, justify="left", no_wrap=not wraps, overflow="fold", min_width=min_width)
    for row in section.rows:
        table.add_row(*row)
    return table


def _needed_width(section: Section, level: int) -> int:
    """Width the table needs at a layout level (see :func:`_print_section`)."""
    width = 2 + len(section.headers) - 1  # table edges and one divider between columns
    for index, header in enumerate(section.headers):
        cells = [header] + [row[index] for row in section.rows]
        if index in section.right_aligned:
            cap = 10_000 if level < 2 else 1
        elif level == 0:
            cap = MIN_NAME_WIDTH if index in section.wrapping else 10_000
        else:
            cap = MIN_TEXT_WIDTH
        width += _widest_line(cells, cap) + 2  # one space of padding each side
    return width


def _widest_line(cells: list[str], cap: int) -> int:
    return min(cap, max(len(line) for cell in cells for line in cell.splitlines() or [""]))


def _print_notes(console: Console, notes: list[str]) -> None:
    """Dim notes under a table, indented so wrapped lines stay aligned."""
    for note in notes:
        console.print(Padding(Text(note, style="dim"), (0, 0, 0, 2)))
