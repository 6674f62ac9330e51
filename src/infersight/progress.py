"""A tiny progress-callback protocol, so ingest and analyses can say how far they are.

Why a protocol: ingest and analyses must not import a terminal library (they run in worker
processes, in the MCP server, in tests). They call the few methods below on whatever object the
front end passes; the CLI passes a rich progress bar (``infersight.render.progress``), every other
caller gets :data:`NO_PROGRESS`, which does nothing.

Stages are the steps a user can recognise: reading/decompressing (with bytes done and total),
building columns, analyses, rendering. ``total`` is known only where the work is measurable
(bytes of a file): other stages report no total, and the bar shows them as a spinner.
"""

from __future__ import annotations

from typing import Protocol

READING = "reading"
COLUMNS = "building columns"
ANALYSES = "analyses"
RENDERING = "rendering"


class Progress(Protocol):
    """What ingest and analyses call; every method returns at once and never raises."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage begins; ``total``: the work it will do (bytes), None when unknown."""

    def advance(self, done: int) -> None:
        """The current stage has done ``done`` of its total (absolute, not an increment)."""


class NoProgress:
    """The default: reports nothing."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Nothing to show."""

    def advance(self, done: int) -> None:
        """Nothing to show."""


NO_PROGRESS: Progress = NoProgress()
