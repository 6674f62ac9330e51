"""A rich progress bar for long runs: the stage, bytes read with percent and ETA, elapsed time.

Implements :class:`infersight.progress.Progress` for the CLI. Why a delay: most traces read in
well under a second, and a bar that flashes for 0.3 s is noise; the bar appears only once the
run has lasted :data:`SHOW_AFTER_S` and is removed when the run ends (``transient``), so the
report below it is all that stays. Stages with a known total (the bytes of the file being read)
show a bar, a percentage and an ETA; the others (building columns, analyses, rendering) show a
spinner and their elapsed time. Off unless stderr is a terminal and ``--quiet`` is not given
(:func:`progress_for`).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

SHOW_AFTER_S = 2.0


class RichProgress:
    """Stages as rows of a rich progress display on stderr (shown after :data:`SHOW_AFTER_S`)."""

    def __init__(self, console: Console | None = None, show_after_s: float = SHOW_AFTER_S) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console if console is not None else Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None
        self._total: int | None = None
        self._began = time.monotonic()
        self._show_after = show_after_s
        self._shown = False

    def stage(self, name: str, total: int | None = None) -> None:
        """Close the current stage's row and open one for ``name``."""
        if self._task is not None:
            task = self._bar.tasks[-1]
            self._bar.update(self._task, total=task.total or 1, completed=task.total or 1)
            self._bar.stop_task(self._task)
        self._total = total
        self._task = self._bar.add_task(name, total=total, detail=_bytes(0, total) if total else "")
        self._show_if_due()

    def advance(self, done: int) -> None:
        """The current stage has done ``done`` of its total."""
        if self._task is None:
            return
        detail = _bytes(done, self._total) if self._total else ""
        self._bar.update(self._task, completed=done, detail=detail)
        self._show_if_due()

    def close(self) -> None:
        """Remove the display (the run is over)."""
        if self._shown:
            self._bar.stop()
            self._shown = False

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _show_if_due(self) -> None:
        if not self._shown and time.monotonic() - self._began >= self._show_after:
            self._bar.start()
            self._shown = True


def _bytes(done: int, total: int | None) -> str:
    return f"{done / 2**20:,.0f} / {(total or 0) / 2**20:,.0f} MiB"


def progress_for(quiet: bool) -> RichProgress | None:
    """A :class:`RichProgress` when stderr is an interactive terminal and not ``quiet``, else None."""
    if quiet or not sys.stderr.isatty():
        return None
    return RichProgress()
