"""Printing a :class:`~infersight.render.sections.Section` as a rich table, for every terminal renderer.

Why its own module: the analyze, roofline and ncu views all print sections; with the printer a
private function of ``render/terminal.py``, ``render/theory.py`` borrowed it and ``terminal.py``
imported ``theory.py`` back (an import circle).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from infersight.render.sections import Section

__all__ = ["print_section"]

MIN_NAME_WIDTH = 32
MIN_TEXT_WIDTH = 8


def print_section(console: Console, section: Section) -> None:
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
    """Width the table needs at a layout level (see :func:`print_section`)."""
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
