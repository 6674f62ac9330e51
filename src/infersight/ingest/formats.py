"""The one registry of input trace formats: names, file suffixes, content magic and help text.

Why one table: the list of formats was repeated in the CLI's help of five commands, the MCP
server's instructions, the folder scan and the A/B side parser, and a new format meant editing
all of them. Every one of those now reads :data:`TRACE_FORMATS` (or the strings derived from it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FORMATS_HELP",
    "FORMATS_SHORT",
    "KINETO_SUFFIXES",
    "NSYS_REPORT_SUFFIXES",
    "SQLITE_SUFFIXES",
    "TRACE_FORMATS",
    "TRACE_SUFFIXES",
    "TraceFormat",
    "format_of_name",
]


@dataclass(frozen=True)
class TraceFormat:
    """One input format: how a file is named and recognised, and how the help names it."""

    name: str
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...]  # leading bytes that identify the content (empty: named only)
    help: str  # the phrase the CLI/MCP help uses
    short: str  # the short form used in one-line hints


TRACE_FORMATS: tuple[TraceFormat, ...] = (
    TraceFormat(
        name="nsys-sqlite",
        suffixes=(".sqlite",),
        magic=(b"SQLite format 3\x00",),
        help="Nsight Systems SQLite exports (.sqlite)",
        short="nsys .sqlite",
    ),
    TraceFormat(
        name="nsys-report",
        suffixes=(".nsys-rep", ".qdrep"),
        magic=(),
        help=".nsys-rep/.qdrep reports (needs nsys on PATH)",
        short="nsys .nsys-rep",
    ),
    TraceFormat(
        name="kineto",
        suffixes=(".json", ".json.gz"),
        magic=(b"\x1f\x8b", b"{", b"["),
        help="PyTorch-profiler (Kineto) JSON (.json, .json.gz)",
        short="Kineto .json[.gz]",
    ),
)

SQLITE_SUFFIXES = TRACE_FORMATS[0].suffixes
NSYS_REPORT_SUFFIXES = TRACE_FORMATS[1].suffixes
KINETO_SUFFIXES = TRACE_FORMATS[2].suffixes
TRACE_SUFFIXES: tuple[str, ...] = tuple(s for f in TRACE_FORMATS for s in f.suffixes)
FORMATS_HELP = ", ".join(f.help for f in TRACE_FORMATS)
FORMATS_SHORT = ", ".join(f.short for f in TRACE_FORMATS)


def format_of_name(path: str | Path) -> TraceFormat | None:
    """The format a file's name says (longest suffix first: ``.json.gz`` before ``.gz``), or None."""
    name = Path(path).name.lower()
    matches = [(len(s), f) for f in TRACE_FORMATS for s in f.suffixes if name.endswith(s)]
    return max(matches, key=lambda m: m[0])[1] if matches else None
