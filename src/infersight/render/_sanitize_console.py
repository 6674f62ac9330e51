"""The rich side of :func:`infersight.render.sanitize.sanitizing_console`: a render hook that
sanitises every text segment after layout.

Why its own module: rich is imported only where a command draws, not by every module that only
needs :func:`~infersight.render.sanitize.sanitize_text`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.segment import Segment

from infersight.render.sanitize import sanitize_text

__all__ = ["sanitizing_console"]


class _Sanitized:
    """A renderable whose text segments are sanitised after layout (rich's own control
    segments — cursor moves of a live display — pass unchanged)."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control:
                yield segment
                continue
            clean = sanitize_text(segment.text)
            yield segment if clean == segment.text else Segment(clean, segment.style, segment.control)


class _SanitizeHook(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Sanitized(r) for r in renderables]


def sanitizing_console(**kwargs: Any) -> Console:
    """A rich Console whose print hook sanitises every text segment (:mod:`infersight.render.sanitize`).

    Emoji codes are off unless asked for: a kernel or range name holding ``:name:`` (C++ scopes,
    NVTX labels) must print as written, not as a pictogram.
    """
    kwargs.setdefault("emoji", False)
    console = Console(**kwargs)
    console.push_render_hook(_SanitizeHook())
    return console
