"""Readers: every supported input format -> :class:`infersight.model.Trace`.

``load_traces(path)`` is the one entry point: it recognises the format by content (SQLite magic,
gzip magic, JSON) and extension (.nsys-rep/.qdrep), expands directories of per-rank files, and
raises :class:`infersight.errors.InputError` for anything it cannot read.

Why the readers, the model and the executors are imported inside the functions: the CLI imports
:mod:`infersight.ingest.formats` for its help text, which runs this package's ``__init__``;
importing pandas here would put it on every ``infersight --help``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from infersight.errors import InputError
from infersight.ingest.formats import (
    FORMATS_HELP,
    KINETO_SUFFIXES,
    NSYS_REPORT_SUFFIXES,
    SQLITE_SUFFIXES,
    TRACE_FORMATS,
    TRACE_SUFFIXES,
)
from infersight.progress import NO_PROGRESS, READING, Progress
from infersight.safe_io import check_regular_file

if TYPE_CHECKING:
    from infersight.executors import Executor
    from infersight.model import Trace

SQLITE_MAGIC = TRACE_FORMATS[0].magic[0]
GZIP_MAGIC = TRACE_FORMATS[2].magic[0]


def load_traces(
    path: str | Path,
    *,
    cpu_ops_as_kernels: bool = False,
    executor: Executor | None = None,
    progress: Progress = NO_PROGRESS,
    compact_ranges: bool = False,
) -> list[Trace]:
    """Read one file or a directory of per-rank files into traces (one per rank/file).

    A directory's files are read on ``executor`` (None: local worker processes); one file is read
    here, where shipping it to a worker would only add the transfer (``progress`` hears how far).
    ``compact_ranges``: see :func:`load_file`.
    """
    p = Path(path)
    files = trace_files(p)
    if p.is_dir():
        from infersight.ingest.checks import clock_offset_notes
        from infersight.ingest.parallel import load_files

        loader = functools.partial(load_file, cpu_ops_as_kernels=cpu_ops_as_kernels)
        traces = load_files(files, loader, executor)  # one task per rank file
        clock_offset_notes(traces)
        return traces
    return [
        load_file(p, cpu_ops_as_kernels=cpu_ops_as_kernels, progress=progress, compact_ranges=compact_ranges)
    ]


def trace_files(path: Path) -> list[Path]:
    """The file itself, or every trace file in the folder (per-rank files as vLLM/SGLang write
    them), sorted by name.

    JSON files that are not Chrome traces (e.g. a ``report.json`` written by an earlier run) are
    skipped, so re-analysing a folder does not trip over our own outputs; an empty file named like
    a trace is not skipped (its reader says it is empty), nor is a member named like a trace that
    is not a regular file (a FIFO would block, a device never end, a symlink loop never resolve):
    both are errors, as any other unreadable rank file. Raises InputError when the path does not
    exist, is not a regular file or folder, or the folder holds no trace.
    """
    if not path.is_dir():
        check_regular_file(path, "trace")
        return [path]
    files = sorted(f for f in path.iterdir() if _named_like_trace(f) and _regular_trace_member(f))
    files = [f for f in files if _looks_like_trace(f)]
    if not files:
        raise InputError(path, f"directory holds no traces ({', '.join('*' + s for s in TRACE_SUFFIXES)})")
    return files


TRACE_JSON_KEYS = (b'"traceEvents"', b'"schemaVersion"', b'"deviceProperties"')
_SNIFF_BYTES = 1 << 20


def _named_like_trace(path: Path) -> bool:
    return path.suffix in (*SQLITE_SUFFIXES, *NSYS_REPORT_SUFFIXES) or path.name.endswith(KINETO_SUFFIXES)


def _regular_trace_member(path: Path) -> bool:
    """False for a sub-folder (not read); InputError for anything else that is not a regular file."""
    if path.is_dir():
        return False
    check_regular_file(path, "trace file in the folder")
    return True


def _looks_like_trace(path: Path) -> bool:
    """True for nsys exports/reports, empty files, and JSON whose head has a Chrome-trace key."""
    if path.suffix in (*SQLITE_SUFFIXES, *NSYS_REPORT_SUFFIXES):
        return True
    if not path.name.endswith(KINETO_SUFFIXES):
        return False
    try:
        if path.stat().st_size == 0:
            return True  # a rank that wrote nothing: its reader reports "file is empty"
        if path.name.endswith(".gz"):
            import gzip

            with gzip.open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        else:
            with path.open("rb") as fh:
                head = fh.read(_SNIFF_BYTES)
    except (OSError, EOFError):
        return True  # unreadable: let the reader report it with a clear message
    stripped = head.lstrip()
    if not stripped:
        return True  # empty once decompressed: its reader says so, rather than a silent skip
    return stripped.startswith(b"[") or any(key in head for key in TRACE_JSON_KEYS)


def load_file(
    path: Path,
    *,
    cpu_ops_as_kernels: bool = False,
    progress: Progress = NO_PROGRESS,
    compact_ranges: bool = False,
) -> Trace:
    """Read one trace file (format recognised by content and extension).

    ``compact_ranges``: an Nsight Systems export's NVTX names are read as emit_nvtx forms and
    numbers (``COMPACT_RANGE_COLUMNS``), not one string per distinct name; only for callers whose
    analyses read range names through :mod:`infersight.analyses.range_names`.
    """
    check_regular_file(path, "trace")
    if path.suffix in NSYS_REPORT_SUFFIXES:
        from infersight.ingest.nsys_rep import export_nsys_report

        path = export_nsys_report(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if not head:
        raise InputError(path, "file is empty")
    if head.startswith(SQLITE_MAGIC):
        from infersight.ingest.nsys_sqlite import read_nsys_sqlite

        progress.stage(READING)
        return read_nsys_sqlite(path, compact_ranges=compact_ranges)
    if head.startswith(GZIP_MAGIC) or head.lstrip()[:1] in (b"{", b"["):
        from infersight.ingest.kineto import read_kineto

        return read_kineto(path, cpu_ops_as_kernels=cpu_ops_as_kernels, progress=progress)
    raise InputError(
        path,
        f"not a recognised trace: expected {FORMATS_HELP}",
    )
