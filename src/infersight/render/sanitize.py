"""Neutralise control characters of input strings before they reach a terminal, Markdown or HTML.

Kernel names, NVTX ranges, file names, GPU names and config strings come from files we do not
control. A name holding ``ESC [ 2 J`` (clear screen), an OSC title sequence ``ESC ] 0 ; … BEL``,
a C1 control or a carriage return would act on the reader's terminal instead of being shown.
Every such character becomes U+FFFD (visible, one cell) so the name still reads as "something
odd was here". Newlines and tabs stay: our own layout uses them. JSON output is not sanitised:
it keeps the exact strings, and JSON escapes control characters itself.

One place per renderer family: :func:`sanitizing_console` for every rich terminal view,
:func:`sanitize_text` on the finished Markdown and HTML documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["REPLACEMENT", "json_for_terminal", "one_line", "sanitize_text", "sanitizing_console"]

REPLACEMENT = "\ufffd"
_KEEP = {0x09, 0x0A}  # tab, newline
_CONTROLS = [c for c in range(0x20) if c not in _KEEP] + list(range(0x7F, 0xA0))  # C0, DEL, C1
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]  # direction overrides ("trojan source")
_TABLE = {c: REPLACEMENT for c in (*_CONTROLS, *_BIDI)}


def sanitize_text(text: str) -> str:
    """``text`` with every control character (bar newline and tab) replaced by U+FFFD."""
    return text.translate(_TABLE)


def sanitizing_console(**kwargs: Any) -> Console:
    """A rich Console that never writes a control character taken from its input strings.

    Covers everything passed to ``print``. A live display (progress bar, status) is refreshed
    outside the print hooks: sanitise the text you give it (``sanitize_text``) where you set it.
    The console classes live in :mod:`infersight.render._sanitize_console`, imported here: the
    text functions of this module are on paths (``infersight --help``, error lines) that never
    draw with rich, and importing rich costs ~0.1 s of every start.
    """
    from infersight.render._sanitize_console import sanitizing_console as make

    return make(**kwargs)


_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *_BIDI)}


def json_for_terminal(text: str) -> str:
    """JSON text with DEL, C1 controls and direction overrides written as ``\\uXXXX`` escapes.

    JSON escapes C0 controls itself but may carry U+0080-U+009F raw, and a UTF-8 terminal can
    read U+009B as CSI. Outside strings JSON holds only ASCII, so this is lossless: the parsed
    strings stay exactly the input's. For JSON printed to standard output.
    """
    return text.translate(_JSON_ESCAPES)


def one_line(text: str) -> str:
    """``text`` sanitised and on one line (newlines and tabs become spaces): for a name put in a
    shell comment, where a newline would turn the rest of the name into a command."""
    return " ".join(sanitize_text(text).split("\n")).replace("\t", " ")
