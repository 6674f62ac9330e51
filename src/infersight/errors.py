"""Errors that reach the user as one clear line and exit code 2.

Every reader raises :class:`InputError` for anything wrong with what the user gave us
(unreadable, truncated, wrong schema, no kernels, ...). The CLI turns it into
``infersight: error: <file>: <problem>`` on stderr and exit code 2 — never a traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """A problem with an input file or option, stated for the user in one line."""

    def __init__(self, source: str | Path | None, problem: str) -> None:
        self.source = str(source) if source is not None else None
        self.problem = " ".join(problem.split())  # keep it on one line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as printed: ``<file>: <problem>`` (or just the problem)."""
        return f"{self.source}: {self.problem}" if self.source else self.problem
