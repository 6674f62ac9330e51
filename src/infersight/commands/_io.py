"""Terminal and file helpers every CLI command shares (consoles, spinners, stages, reading a report back).

The output-path checks (`check_outputs`, `write_output`) live in :mod:`infersight.output_paths`, where
the MCP tools reach them too; they are re-exported here for the commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from infersight.errors import InputError
from infersight.output_paths import check_outputs, write_output
from infersight.render.sanitize import sanitizing_console
from infersight.safe_io import MAX_REPORT_BYTES, read_bounded_bytes

if TYPE_CHECKING:  # rich is imported where a command draws: `infersight --help` does not need it
    from rich.console import Console

    from infersight.analysis_report import AnalysisReport

__all__ = [
    "NON_TTY_WIDTH",
    "Stages",
    "check_outputs",
    "input_size",
    "read_analysis_report",
    "stdout_console",
    "with_spinner",
    "write_output",
]

NON_TTY_WIDTH = 180  # wide enough that kernel-summary rows are not folded when piped

T = TypeVar("T")


def stdout_console() -> Console:
    """Rich console for the report; a fixed wide width when piped so rows are not folded.

    Markup is off: kernel and range names such as ``[param|cuda]`` are data, not styles, and
    renderers style with :class:`rich.text.Text` instead. Control characters of input strings
    (terminal escape sequences in a kernel name) are neutralised by the console itself, so no
    renderer can forget it.
    """
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return sanitizing_console(markup=False)
    return sanitizing_console(width=NON_TTY_WIDTH, markup=False)


def with_spinner(message: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a rich spinner on stderr — only when stderr is an interactive terminal."""
    if not sys.stderr.isatty():
        return work()
    from rich.console import Console

    with Console(stderr=True).status(f"{message}…"):
        return work()


class Stages:
    """Numbered stages of a long command on stderr, only on an interactive terminal.

    While a stage runs: a spinner, '[2/4] analysing…' and the elapsed time; when it ends, a kept
    line '✓ [2/4] analysing 3.1 s', so the user sees what is done and what is running, and how
    long each step took. (A reader that holds the GIL can still pause the redraw; the stage line
    says which step that is.)
    """

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.total = total
        self.done = 0
        self.active = console is not None or sys.stderr.isatty()
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console

    def run(self, message: str, work: Callable[[], T]) -> T:
        """Run one stage: ``work()`` under the spinner; its result is returned unchanged."""
        import time

        self.done += 1
        label = f"[{self.done}/{self.total}] {message}"
        if not self.active:
            return work()
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        started = time.perf_counter()
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=self.console, transient=True,
        ) as progress:  # fmt: skip
            progress.add_task(f"{label}…", total=None)
            result = work()
        self.console.print(Text(f"✓ {label} {time.perf_counter() - started:.1f} s", style="dim"))
        return result


def input_size(paths: Iterable[Path]) -> str:
    """Total size of the input files (folders: their files, one level), e.g. '2.9 MB'."""
    total = 0
    for path in paths:
        try:
            if path.is_dir():
                total += sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            else:
                total += path.stat().st_size
        except OSError:
            continue
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if total >= scale:
            return f"{total / scale:.1f} {unit}"
    return f"{total} B"


def read_analysis_report(path: Path) -> AnalysisReport:
    """An ``analyze --json`` report read back (``report --from-report``, ``narrate``).

    Bounded and regular files only (``/dev/zero`` or a FIFO is refused before it is read);
    damaged JSON or another schema is one line naming the file and the first wrong field.
    """
    from pydantic import ValidationError

    from infersight.analysis_report import AnalysisReport

    data = read_bounded_bytes(path, MAX_REPORT_BYTES, "report")
    try:
        return AnalysisReport.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else None
        if first is None:
            detail = exc.title
        elif first["type"].startswith("json_"):
            detail = f"not valid JSON ({first['msg']})"
        else:
            field = ".".join(str(p) for p in first["loc"]) or "top level"
            detail = f"{field}: {first['msg']}"
        raise InputError(path, f"not an infersight analyze --json report: {detail}") from None
