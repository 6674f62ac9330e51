"""Nsight Systems SQLite export (``nsys export --type sqlite``) -> :class:`Trace`.

The export is opened read-only and immutable (``mode=ro&immutable=1``): nothing is ever written
next to or into the user's file, not even a journal or a lock. When a ``-wal`` or ``-journal``
lies beside it, the immutable view would be wrong (committed changes missed, half-written pages
read), so the committed state is read from a settled private copy instead
(:mod:`infersight.ingest.sqlite_snapshot`).

Schemas differ between nsys versions (checked on exports from 2021 to 2026.2), so every table
and column is looked up in ``sqlite_master`` / ``PRAGMA table_info`` before it is used, and a
missing optional column becomes the model's "unknown" value. Tables are created lazily by nsys:
an absent event table means "no such events", not corruption. Only the kernel table is
mandatory: without GPU kernels there is nothing to diagnose.

Scale: a capture with a million kernels must be read in a few seconds and little memory, so
integer columns are fetched in chunks straight into int64 numpy arrays (NULLs replaced in SQL),
and names stay integer ``StringIds`` ids until the end; only the distinct ids are resolved
(SQLite does ``IN (SELECT DISTINCT ...)``) and the name column is built as a pandas Categorical
from codes. No per-row Python string is made for kernels or API calls. NVTX ranges (often
several per kernel) take the same path; their inline texts come joined into one string per
slice, are split and factorised slice by slice. The NVTX ranges and the kernel table are each
read on their own connection in a thread while the API table is read (SQLite aggregates without
holding the GIL), so two cores share the three big scans; the NVTX thread hands slices to a
helper thread as well, so that the biggest table does not finish alone on one core.

Conventions the analyses rely on (see :mod:`infersight.model.trace`):

* ``process`` = ``globalPid`` of GPU activity, and ``globalTid`` with its low 24 bits cleared for
  host-side rows (API calls, NVTX), so that ``(process, correlation)`` joins a kernel to its
  launch (correlation ids repeat across processes). If a GPU activity table has no
  ``globalPid`` (no known export lacks it) the process is taken from a ``globalTid`` column, else
  from the only process that made runtime calls, else it is -1 (and a note says so).
* Runtime/driver API names lose their version suffix (``cudaLaunchKernel_v7000`` ->
  ``cudaLaunchKernel``). ``CUPTI_ACTIVITY_KIND_RUNTIME`` holds runtime (eventClass 0) *and*
  driver (eventClass 1) calls; rows of the "CUDA backtrace" classes (67-69, written when
  backtraces are collected) duplicate runtime calls under their unversioned name and are skipped.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Self, TypeVar

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from infersight.errors import InputError
from infersight.heap import release_freed_memory
from infersight.ingest.checks import (
    interval_in_limits,
    negative_sizes_unknown,
    short_name,
    shorten_long_names,
    stream_overlap_note,
)
from infersight.ingest.sqlite_snapshot import committed_database
from infersight.model import emit_nvtx
from infersight.model.arrays import join_keys, sorted_contains
from infersight.model.trace import (
    API_COLUMNS,
    COMPACT_RANGE_COLUMNS,
    KERNEL_COLUMNS,
    MEMCPY_COLUMNS,
    MEMSET_COLUMNS,
    RANGE_COLUMNS,
    RANGE_FORM_COLUMN,
    RANGE_NUMBER_COLUMNS,
    GpuInfo,
    Trace,
    code_names,
    make_table,
    names_by_code,
)
from infersight.safe_io import check_regular_file

KERNEL_TABLE = "CUPTI_ACTIVITY_KIND_KERNEL"
RUNTIME_TABLE = "CUPTI_ACTIVITY_KIND_RUNTIME"
DRIVER_TABLE = "CUPTI_ACTIVITY_KIND_DRIVER"
MEMCPY_TABLE = "CUPTI_ACTIVITY_KIND_MEMCPY"
MEMSET_TABLE = "CUPTI_ACTIVITY_KIND_MEMSET"
NVTX_TABLE = "NVTX_EVENTS"
STRING_TABLE = "StringIds"
METADATA_TABLES = ("META_DATA_EXPORT", "EXPORT_META_DATA")  # 2024+ / 2022-2023 name

NO_KERNEL_TABLE = (
    "no CUDA kernel table (CUPTI_ACTIVITY_KIND_KERNEL): the capture recorded no GPU kernels; "
    "re-run nsys profile with --trace=cuda (e.g. nsys profile --trace=cuda,nvtx,osrt ...) and make "
    "sure the profiled process launches kernels while the capture is running"
)
NO_KERNELS = (
    "no GPU kernels: the CUPTI_ACTIVITY_KIND_KERNEL table is empty (the capture window held no "
    "kernel launches); widen the capture range or check --trace=cuda"
)

# globalTid = globalPid | tid: the low 24 bits hold the thread id.
THREAD_ID_BITS = 0xFFFFFF
# NVTX_EVENTS.eventType values (ENUM_NSYS_EVENT_TYPE): push/pop and start/end ranges, domain create.
NVTX_PUSHPOP_RANGE = 59
NVTX_STARTEND_RANGE = 60
NVTX_DOMAIN_CREATE = 75
DEFAULT_NVTX_DOMAIN_ID = 0
# ENUM_NSYS_EVENT_CLASS of CUPTI_ACTIVITY_KIND_RUNTIME rows.
DRIVER_EVENT_CLASS = 1
BACKTRACE_EVENT_CLASSES = (67, 68, 69)  # CUDABACKTRACE, _START, _FINISH (duplicates of API calls)

# copyKind (ENUM_CUDA_MEMCPY_OPER) -> model kind; the ENUM table, when present, overrides codes.
# Unified-memory migrations (11-13) keep their direction as their own kinds: a page-fault
# migration is not a cudaMemcpy and wants different advice (prefetch / cudaMemAdvise).
COPY_KINDS = {
    1: "HtoD",
    2: "DtoH",
    3: "HtoA",
    4: "AtoH",
    5: "AtoA",
    6: "AtoD",
    7: "DtoA",
    8: "DtoD",
    9: "HtoH",
    10: "PtoP",
    11: "UVM HtoD",
    12: "UVM DtoH",
    13: "UVM DtoD",
}
_COPY_KIND_BY_ENUM_SUFFIX = {
    "HTOD": "HtoD",
    "DTOH": "DtoH",
    "HTOA": "HtoA",
    "ATOH": "AtoH",
    "ATOA": "AtoA",
    "ATOD": "AtoD",
    "DTOA": "DtoA",
    "DTOD": "DtoD",
    "HTOH": "HtoH",
    "PTOP": "PtoP",
    "UVM_HTOD": "UVM HtoD",
    "UVM_DTOH": "UVM DtoH",
    "UVM_DTOD": "UVM DtoD",
}
# srcKind/dstKind (ENUM_CUDA_MEM_KIND) -> model memory kind; *_STATIC (__device__/__managed__
# variables) are device/managed memory too.
MEMORY_KINDS = {0: "pageable", 1: "pinned", 2: "device", 3: "array", 4: "managed", 5: "device", 6: "managed"}
_MEMORY_KIND_BY_ENUM_SUFFIX = {
    "PAGEABLE": "pageable",
    "PINNED": "pinned",
    "DEVICE": "device",
    "ARRAY": "array",
    "MANAGED": "managed",
    "DEVICE_STATIC": "device",
    "MANAGED_STATIC": "managed",
}
# nsys appends the API version (_v3020 ... _v12000); keep API names' own _v2 (cudaStreamGetCaptureInfo_v2).
_API_VERSION_SUFFIX = re.compile(r"_v\d{4,}$")
_SLICE_ROWS = 1 << 20  # rows per rowid slice of a bulk read (a quarter of it when shared, below)
_IDS_PER_QUERY = 5000
_TEXT_SEPARATOR = "\x1f"  # ASCII unit separator: joins the texts of a bulk read
_HAS_TEXT = -2  # in an int field of a bulk read: this row has a (non-NULL) text value
# start/end of a bulk read where the column is NULL (rows then dropped, see _interval_fields)
_NULL_TIME = -(2**63) + 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Read = TypeVar("Read")  # what a background table read returns


@dataclass(frozen=True)
class Schema:
    """Which tables exist, and the columns of each one (read once, on demand)."""

    conn: sqlite3.Connection
    tables: frozenset[str]
    # opens another connection to the same database (a helper thread's), where one may be used
    helper_connection: Callable[[], sqlite3.Connection] | None = None

    def has(self, table: str) -> bool:
        return table in self.tables

    def columns(self, table: str) -> set[str]:
        if table not in self.tables:
            return set()
        return {row[1] for row in self.conn.execute(f"PRAGMA table_info({_quote(table)})")}


def read_nsys_sqlite(path: Path, *, compact_ranges: bool = False) -> Trace:
    """Read one Nsight Systems SQLite export into a :class:`Trace` (never writing to it).

    ``compact_ranges``: NVTX names as emit_nvtx forms and numbers (``COMPACT_RANGE_COLUMNS``),
    for callers whose analyses read range names through :mod:`infersight.analyses.range_names`.
    Raises :class:`InputError` when the file is not an nsys export, is truncated or corrupt, or
    holds no GPU kernels.
    """
    path = Path(path)
    check_regular_file(path, "Nsight Systems export")
    try:
        with committed_database(path) as snapshot, closing(_connect(snapshot.path)) as conn:
            trace = _read(path, snapshot.path, conn, compact_ranges)
            trace.notes[:0] = snapshot.notes
    except sqlite3.DatabaseError as exc:
        raise InputError(path, f"cannot read the SQLite database (truncated or corrupt?): {exc}") from None
    trace.check_schema()
    return trace


def _connect(path: Path, *, any_thread: bool = False) -> sqlite3.Connection:
    """Read-only, immutable connection: SQLite creates no journal/WAL/lock file and never writes.

    ``path`` must have no ``-wal``/``-journal`` beside it (see :func:`committed_database`).
    ``any_thread``: the connection is handed to another thread (:class:`_BackgroundRead`).
    """
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=not any_thread
    )
    # Some exports hold non-UTF-8 text (e.g. a Windows user name in the metadata); keep reading.
    conn.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
    return conn


def _read(path: Path, database: Path, conn: sqlite3.Connection, compact_ranges: bool = False) -> Trace:
    """The trace of ``path`` (named in messages), read from ``database`` (its committed state)."""
    tables = frozenset(
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")
    )
    schema = Schema(conn, tables)
    _check_is_nsys_export(path, schema)
    trace = Trace(source=str(path), format="nsys-sqlite")
    with (
        _BackgroundRead(database, tables, functools.partial(_nvtx_ranges, compact=compact_ranges)) as nvtx,
        _BackgroundRead(database, tables, functools.partial(_kernel_columns, path)) as kernel_read,
        _BackgroundRead(database, tables, _memcpy_columns) as memcpy_read,
        _BackgroundRead(database, tables, _memset_columns) as memset_read,
    ):
        trace.metadata = _metadata(schema, trace.notes)
        trace.api = _time_ordered(_api_table(schema, trace.notes))
        kernel_columns, kernel_notes = kernel_read.result()
        trace.notes.extend(kernel_notes)
        trace.kernels = _time_ordered(
            _activity_table(kernel_columns, KERNEL_TABLE, KERNEL_COLUMNS, "kernels", trace.api, trace.notes)
        )
        memcpy_columns, memcpy_notes = memcpy_read.result()
        trace.notes.extend(memcpy_notes)
        trace.memcpy = _time_ordered(
            _activity_table(memcpy_columns, MEMCPY_TABLE, MEMCPY_COLUMNS, "memcpy", trace.api, trace.notes)
        )
        memset_columns, memset_notes = memset_read.result()
        trace.notes.extend(memset_notes)
        trace.memset = _time_ordered(
            _activity_table(memset_columns, MEMSET_TABLE, MEMSET_COLUMNS, "memset", trace.api, trace.notes)
        )
        # what needs no NVTX is done while the NVTX read finishes (its notes keep their place)
        gpu_notes: list[str] = []
        trace.gpus = _gpus(schema, trace.kernels, gpu_notes)
        launch_notes = [
            *_launch_notes(trace.kernels, trace.api),
            *filter(None, [stream_overlap_note(trace.kernels)]),
        ]
        ranges, nvtx_notes = nvtx.result()
    trace.ranges = _time_ordered(ranges)
    trace.notes.extend([*nvtx_notes, *gpu_notes, *launch_notes])
    negative_sizes_unknown(trace)
    shorten_long_names(trace)
    release_freed_memory()  # the read's spent slices and strings (~190 MB for 4.8M NVTX ranges)
    return trace


class _BackgroundRead(Generic[Read]):
    """Runs one table read on a second connection, in a thread, while the caller reads the rest.

    Most of reading a big table is SQLite aggregating inside ``sqlite3_step``, which runs
    without the GIL: with two cores the NVTX ranges (4.8M for 1M kernels in PyTorch traces) and
    the kernel table are read beside the API table (NVTX alone: 6.1 s -> 3.7 s for 1M kernels
    and 4.8M ranges). The copies and memsets too: read after the API table, they kept one core
    busy alone for ~0.7 s (250k copies and 67k memsets with 1M kernels); beside the others, the
    operating system shares the two cores among all the reads (read 5.2 -> 5.0 s).
    ``reader(schema, notes)`` gets its own notes list, which the caller appends where a serial
    read would have written it, so the trace is the same either way.

    If the caller fails first, a progress handler aborts the thread's current and later queries,
    so the error is not held up by a read nobody wants.
    """

    def __init__(
        self, path: Path, tables: frozenset[str], reader: Callable[[Schema, list[str]], Read]
    ) -> None:
        self._path = path
        self._cancelled = threading.Event()
        self._conn = self._open()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infersight-read")
        self._future = self._pool.submit(self._read, reader, Schema(self._conn, tables, self._open))

    def _open(self) -> sqlite3.Connection:
        """A connection to the database that the caller's failure aborts (see the class doc)."""
        conn = _connect(self._path, any_thread=True)
        conn.set_progress_handler(self._abort_if_cancelled, 100_000)
        return conn

    @staticmethod
    def _read(reader: Callable[[Schema, list[str]], Read], schema: Schema) -> tuple[Read, list[str]]:
        notes: list[str] = []
        return reader(schema, notes), notes

    def _abort_if_cancelled(self) -> int:
        return 1 if self._cancelled.is_set() else 0

    def result(self) -> tuple[Read, list[str]]:
        """What the reader returned and its notes (re-raises what the read raised)."""
        return self._future.result()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self._cancelled.set()
        self._pool.shutdown(wait=True)
        self._conn.close()


def _time_ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by start time (stable), as every reader delivers them; nsys writes per-buffer order."""
    starts = frame["start"].to_numpy()
    if len(frame) < 2 or bool((starts[1:] >= starts[:-1]).all()):
        return frame
    return frame.iloc[np.argsort(starts, kind="stable")].reset_index(drop=True)


def _check_is_nsys_export(path: Path, schema: Schema) -> None:
    cupti = [t for t in schema.tables if t.startswith("CUPTI_ACTIVITY_KIND_")]
    if not schema.has(STRING_TABLE) and not cupti:
        what = "an empty SQLite database" if not schema.tables else "an SQLite database"
        raise InputError(
            path,
            f"not an Nsight Systems export: {what} without StringIds or CUPTI_ACTIVITY_KIND_* tables "
            "(make one with: nsys export --type sqlite --output report.sqlite report.nsys-rep)",
        )
    if not schema.has(KERNEL_TABLE):
        raise InputError(path, NO_KERNEL_TABLE)
    if not schema.has(STRING_TABLE):
        raise InputError(path, "incomplete Nsight Systems export: no StringIds table, kernel names unknown")


# ---------------------------------------------------------------------------------------------
# generic helpers


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _int_expr(columns: set[str], *names: str, default: int = -1) -> str:
    """SQL for the first present column of ``names`` (NULL -> default), or the default itself."""
    present = [_quote(n) for n in names if n in columns]
    return f"COALESCE({', '.join([*present, str(default)])})" if present else str(default)


@dataclass(frozen=True)
class Slice:
    """One rowid slice of a bulk read: int64 columns, and a text column's non-NULL values.

    ``texts`` holds the values of the rows where ``has_text`` is set, in row order (all rows of
    a slice come from one query, so the two line up by construction). ``dropped``: rows read
    but left out because their interval is invalid (see :func:`_interval_fields`).
    """

    ints: dict[str, np.ndarray]
    has_text: np.ndarray
    texts: list[str]
    dropped: int = 0


def _interval_fields(cols: set[str]) -> dict[str, str]:
    """``start``/``end`` fields of a bulk read that keeps rows with a missing or reversed interval.

    Rows whose start or end is NULL, or whose end < start, are dropped and counted in numpy
    (:func:`_fetch_slice`) instead of by a second full scan of the table (``COUNT(*) WHERE
    ... IS NULL OR "end" < start``), which cost ~10% of reading an export.
    """
    return {
        "start": f"COALESCE(start, {_NULL_TIME})" if "start" in cols else str(_NULL_TIME),
        "end": f'COALESCE("end", {_NULL_TIME})' if "end" in cols else str(_NULL_TIME),
    }


def _dropped_note(dropped: int, what: str, table: str) -> list[str]:
    """The note for rows left out by their interval (none when no row was)."""
    if not dropped:
        return []
    return [
        f"{dropped} {what} rows of {table} with a missing, reversed (end < start) or out-of-range "
        "start/end were dropped"
    ]


def _fetch_int_columns(
    conn: sqlite3.Connection, table: str, fields: dict[str, str], where: str
) -> tuple[dict[str, np.ndarray], int]:
    """Integer expressions of the rows of ``table`` matching ``where``, as int64 arrays.

    Fetching rows as Python tuples costs ~2.5 s per million 16-column kernel rows; instead
    SQLite concatenates each column into one decimal string (``group_concat``, all aggregates of
    one query see the same rows in the same order) that numpy parses in C, ~3x faster. Rows are
    read in rowid slices so the strings stay small on huge tables. Every expression must be
    NULL-free (COALESCE in the caller), since group_concat skips NULLs; the row count guards it.
    Also returns how many rows were dropped for an invalid interval (:func:`_interval_fields`).
    """
    parts: dict[str, list[np.ndarray]] = {key: [] for key in fields}
    dropped = 0
    for piece in _fetch_slices(conn, table, fields, where):
        for key, values in piece.ints.items():
            parts[key].append(values)
        dropped += piece.dropped
    return _concatenated(parts), dropped


def _fetch_slices(
    conn: sqlite3.Connection,
    table: str,
    fields: dict[str, str],
    where: str,
    text: tuple[str, str] | None = None,
) -> Iterator[Slice]:
    """The non-empty rowid slices of :func:`_fetch_int_columns`, plus an optional text column.

    ``text`` is (SQL text expression, key of the field that is :data:`_HAS_TEXT` exactly on the
    rows where that expression is not NULL): folding the flag into a column the caller reads
    anyway saves an aggregate (~10% of the query). The text values of a slice come from the
    same query as its integers, as one string joined by a control character and split by Python
    in C: ~4x cheaper than one Python object per fetched row, and each slice's string is
    decoded once (as the connection's ``text_factory`` does; the digit strings of the integer
    columns are parsed undecoded, see :func:`_undecoded_text`).
    """
    if not fields:
        raise ValueError("no fields")
    for condition in _slice_conditions(conn, table, where):
        piece = _fetch_slice(conn, table, fields, condition, text)
        if piece is not None:
            yield piece


def _fetch_slice(
    conn: sqlite3.Connection,
    table: str,
    fields: dict[str, str],
    condition: str,
    text: tuple[str, str] | None,
) -> Slice | None:
    """One slice (None when no row matches); see :func:`_fetch_slices`.

    A text that contains the separator splits into too many parts: the slice is then read again
    with a character that occurs in none of its texts (so the second split is exact).
    """
    aggregates = ", ".join(f"group_concat({expr}, ',')" for expr in fields.values())
    separator = _TEXT_SEPARATOR
    for _attempt in range(2):
        joined_text = f", group_concat({text[0]}, char({ord(separator)}))" if text is not None else ""
        with _undecoded_text(conn):
            row = conn.execute(
                f"SELECT COUNT(*), {aggregates}{joined_text} FROM {_quote(table)} WHERE {condition}"
            ).fetchone()
        count = int(row[0])
        if not count:
            return None
        ints = {
            key: _parse_ints(value, count, table, key)
            for key, value in zip(fields, row[1 : len(fields) + 1], strict=True)
        }
        if text is None:
            return _valid_rows(Slice(ints, np.zeros(count, dtype=bool), []))
        has_text = ints[text[1]] == _HAS_TEXT
        joined = row[-1].decode("utf-8", errors="replace") if isinstance(row[-1], bytes) else row[-1]
        texts = joined.split(separator) if isinstance(joined, str) else []
        if len(texts) == int(has_text.sum()):
            return _valid_rows(Slice(ints, has_text, texts))
        separator = _unused_character(joined if isinstance(joined, str) else "")
    raise sqlite3.DatabaseError(f"{table}: the joined texts do not match the rows that have one")


@contextmanager
def _undecoded_text(conn: sqlite3.Connection) -> Iterator[None]:
    """Text values come back as their UTF-8 bytes (not decoded) while the block runs.

    A bulk read's integer columns arrive as digit strings that numpy parses from bytes as well
    as from ``str``: decoding them first (the connection's ``text_factory``) copied every one,
    ~500 MB of digits for 1M kernels and 4.8M NVTX ranges.
    """
    factory = conn.text_factory
    conn.text_factory = bytes
    try:
        yield
    finally:
        conn.text_factory = factory


def _valid_rows(piece: Slice) -> Slice:
    """The slice without rows whose interval is missing or reversed (possibly none left).

    Applies to reads with ``start``/``end`` fields from :func:`_interval_fields`; the number of
    rows left out is kept in ``dropped``.
    """
    if "start" not in piece.ints or "end" not in piece.ints:
        return piece
    valid = interval_in_limits(piece.ints["start"], piece.ints["end"])  # NULL -> _NULL_TIME: out
    dropped = len(valid) - int(valid.sum())
    if not dropped:
        return piece
    kept_texts = valid[piece.has_text]
    texts = [t for t, keep in zip(piece.texts, kept_texts.tolist(), strict=True) if keep]
    ints = {key: values[valid] for key, values in piece.ints.items()}
    return Slice(ints, piece.has_text[valid], texts, dropped)


def _unused_character(text: str) -> str:
    """A control or private-use character that does not occur in ``text``."""
    for code in (*range(1, 32), *range(0xE000, 0xF900)):
        if chr(code) not in text:
            return chr(code)
    raise sqlite3.DatabaseError("no free separator character")  # > 6,000 distinct ones in use


def _slice_conditions(
    conn: sqlite3.Connection, table: str, where: str, slice_rows: int | None = None
) -> list[str]:
    """``where`` restricted to each rowid slice of ``table`` (:func:`_rowid_slices`), in order."""
    return [
        where if bounds is None else f"{where} AND rowid BETWEEN {bounds[0]} AND {bounds[1]}"
        for bounds in _rowid_slices(conn, table, slice_rows)
    ]


def _rowid_slices(
    conn: sqlite3.Connection, table: str, slice_rows: int | None = None
) -> list[tuple[int, int] | None]:
    """Inclusive rowid ranges of at most ``slice_rows`` (default _SLICE_ROWS) ids ([None]: one
    slice, no rowid).

    A view has no rowid (``MIN(rowid)`` is NULL there, which read as "no rows"): one slice.
    """
    size = slice_rows or _SLICE_ROWS
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if kind is not None and kind[0] == "view":
        return [None]
    try:  # two queries: each is a B-tree edge lookup; MIN and MAX in one query scan the table
        low = conn.execute(f"SELECT MIN(rowid) FROM {_quote(table)}").fetchone()[0]
        high = conn.execute(f"SELECT MAX(rowid) FROM {_quote(table)}").fetchone()[0]
    except sqlite3.OperationalError:  # WITHOUT ROWID table
        return [None]
    if low is None or high is None:
        return []
    slices = -(-(int(high) - int(low) + 1) // size)
    if slices > 1:
        rows = conn.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0]
        if slices > 2 * (rows // size + 1):  # sparse rowids: slicing would mostly hit gaps
            return [None]
    return [(lo, min(lo + size - 1, high)) for lo in range(int(low), int(high) + 1, size)]


def _parse_ints(text: object, count: int, table: str, column: str) -> np.ndarray:
    """Parse a comma-separated integer list (``str`` or bytes) that must hold exactly ``count`` values."""
    values = np.empty(0, dtype=np.int64)
    if isinstance(text, str | bytes):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            try:
                values = np.fromstring(text, dtype=np.int64, sep=",")
            except (ValueError, DeprecationWarning):
                values = np.empty(0, dtype=np.int64)
    if len(values) != count:
        raise sqlite3.DatabaseError(f"{table}: non-integer or missing values in the data behind '{column}'")
    return values


def _string_lookup(conn: sqlite3.Connection, ids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(sorted ids, values) of the StringIds rows for the distinct values of ``ids``."""
    wanted = np.unique(ids)
    rows: list[tuple[int, str | None]] = []
    for start in range(0, len(wanted), _IDS_PER_QUERY):
        literals = ",".join(map(str, wanted[start : start + _IDS_PER_QUERY].tolist()))
        rows += conn.execute(f"SELECT id, value FROM {STRING_TABLE} WHERE id IN ({literals})").fetchall()
    rows.sort(key=lambda r: r[0])
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] if r[1] is not None else "" for r in rows]


def _categorical_from_ids(
    ids: np.ndarray,
    lookup: tuple[np.ndarray, list[str]],
    transform: Callable[[str], str] | None = None,
) -> pd.Categorical:
    """Name column from string ids: resolves only the distinct ids (a few hundred, not 1M rows).

    Unknown ids (and -1) become "". ``transform`` is applied to each distinct name; names that
    become equal share one category.
    """
    distinct, inverse = np.unique(ids, return_inverse=True)
    known_ids, values = lookup
    pos = np.searchsorted(known_ids, distinct).clip(0, max(len(known_ids) - 1, 0))
    found = (known_ids[pos] == distinct) if len(known_ids) else np.zeros(len(distinct), dtype=bool)
    names = [values[p] if f else "" for p, f in zip(pos.tolist(), found.tolist(), strict=True)]
    if transform is not None:
        names = [transform(n) for n in names]
    codes, categories = pd.factorize(pd.Index(names, dtype=object))
    return _categorical(codes[inverse], categories)


def _process_of_thread(global_tid: np.ndarray) -> np.ndarray:
    """globalPid from globalTid: the low 24 bits are the thread id."""
    return global_tid & ~np.int64(THREAD_ID_BITS)


def _categorical(codes: np.ndarray, categories: Iterable[object]) -> pd.Categorical:
    """Categorical from integer codes into distinct string categories."""
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=object))


def _categorical_constant(value: str, n: int) -> pd.Categorical:
    return _categorical(np.zeros(n, dtype=np.int8), [value])


# ---------------------------------------------------------------------------------------------
# metadata


def _metadata(schema: Schema, notes: list[str]) -> dict[str, str]:
    """nsys/export/schema versions from META_DATA_EXPORT (2024+) or EXPORT_META_DATA (2022-23)."""
    table = next((t for t in METADATA_TABLES if schema.has(t)), None)
    if table is None:
        notes.append("no export metadata table (export from nsys 2021 or older): nsys version unknown")
        return {}
    if not {"name", "value"} <= schema.columns(table):
        return {}
    raw: dict[str, str] = {}
    for name, value in schema.conn.execute(f"SELECT name, value FROM {_quote(table)}"):
        if isinstance(name, str) and value is not None:
            raw.setdefault(name, short_name(str(value)))
    wanted = {
        "nsys_version": "EXPORT_PRODUCT_VERSION",
        "export_schema_version": "EXPORT_SCHEMA_VERSION",
        "export_platform": "EXPORT_PLATFORM",
        "export_time_utc": "EXPORT_TIME_UTC",
    }
    meta = {key: raw[src] for key, src in wanted.items() if src in raw}
    meta["metadata_table"] = table
    return meta


# ---------------------------------------------------------------------------------------------
# kernels, copies, memsets


def _gpu_process_expr(columns: set[str]) -> str:
    if "globalPid" in columns:
        return 'COALESCE("globalPid", -1)'
    if "globalTid" in columns:
        return f'COALESCE("globalTid", -1) & {~THREAD_ID_BITS}'
    return "-1"


def _fill_missing_process(process: np.ndarray, table: str, api: pd.DataFrame, notes: list[str]) -> None:
    """Without globalPid/globalTid, the only runtime-calling process is the one; else -1 + note."""
    if not len(process) or (process != -1).any():
        return
    api_processes = np.unique(api["process"].to_numpy())
    if len(api_processes) == 1:
        process[:] = api_processes[0]
        notes.append(f"{table} has no globalPid: its rows are attributed to the only process with CUDA calls")
    else:
        notes.append(
            f"{table} has no globalPid and {len(api_processes)} processes made CUDA calls: "
            "process unknown (-1), so its rows cannot be joined to their launching call"
        )


def _kernel_columns(path: Path, schema: Schema, notes: list[str]) -> dict[str, object]:
    """The kernel table's columns (names as a Categorical); the process may still be -1."""
    cols = schema.columns(KERNEL_TABLE)
    name_cols = [c for c in ("demangledName", "shortName", "mangledName") if c in cols]
    missing = [c for c in ("start", "end", "deviceId") if c not in cols]
    if missing or not name_cols:
        raise InputError(
            path, f"{KERNEL_TABLE} lacks column(s) {missing or name_cols or 'name'}: unsupported export"
        )
    name_expr = _int_expr(cols, *name_cols)
    shared = " + ".join(_int_expr(cols, c, default=0) for c in ("staticSharedMemory", "dynamicSharedMemory"))
    fields = {
        **_interval_fields(cols),
        "device": _int_expr(cols, "deviceId"),
        "stream": _int_expr(cols, "streamId"),
        "name": name_expr,
        "correlation": _int_expr(cols, "correlationId"),
        "process": _gpu_process_expr(cols),
        "graph_id": _int_expr(cols, "graphId"),
        "grid_x": _int_expr(cols, "gridX", default=0),
        "grid_y": _int_expr(cols, "gridY", default=0),
        "grid_z": _int_expr(cols, "gridZ", default=0),
        "block_x": _int_expr(cols, "blockX", default=0),
        "block_y": _int_expr(cols, "blockY", default=0),
        "block_z": _int_expr(cols, "blockZ", default=0),
        "registers": _int_expr(cols, "registersPerThread", default=0),
        "shared_mem": shared,
    }
    arrays, dropped = _fetch_int_columns(schema.conn, KERNEL_TABLE, fields, "1")
    notes.extend(_dropped_note(dropped, "kernel", KERNEL_TABLE))
    read = len(arrays["start"])
    arrays = _usable_devices(arrays, KERNEL_TABLE, notes)
    for key in ("grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z", "registers"):
        arrays[key] = arrays[key].clip(0, INT32_MAX)  # int32 in the model: never wrapped
    if not len(arrays["start"]):
        if dropped or read:
            raise InputError(path, f"none of the kernel rows of {KERNEL_TABLE} is usable: {notes[-1]}")
        raise InputError(path, NO_KERNELS)
    data: dict[str, object] = dict(arrays)
    data["name"] = _categorical_from_ids(arrays["name"], _string_lookup(schema.conn, arrays["name"]))
    return data


def _usable_devices(arrays: dict[str, np.ndarray], table: str, notes: list[str]) -> dict[str, np.ndarray]:
    """The rows whose deviceId fits the model's int32 (-1: unknown); the others dropped, noted.

    Why: the int32 cast would fold deviceId 2**32 into device 0 and merge two devices' timelines.
    """
    device = arrays["device"]
    valid = (device >= INT32_MIN) & (device <= INT32_MAX)
    if bool(valid.all()):
        return arrays
    bad = int((~valid).sum())
    example = int(device[~valid][0])
    notes.append(
        f"{bad} rows of {table} with a deviceId that is not a 32-bit integer (e.g. {example}) were dropped"
    )
    return {key: values[valid] for key, values in arrays.items()}


def _activity_table(
    data: dict[str, object] | None,
    table: str,
    columns: Mapping[str, str],
    name: str,
    api: pd.DataFrame,
    notes: list[str],
) -> pd.DataFrame:
    """The model's table ``name`` from the columns read from ``table`` (None: the export has no
    such table), the processes filled in from the API calls when the export recorded none."""
    if data is None:
        return make_table(columns, {}, name)
    process = data["process"]
    assert isinstance(process, np.ndarray)
    _fill_missing_process(process, table, api, notes)
    return make_table(columns, data, name)


def _enum_labels(
    schema: Schema, table: str, by_suffix: dict[str, str], defaults: dict[int, str], prefix: str
) -> dict[int, str]:
    """code -> label from an ENUM_* table (names like CUDA_MEMCPY_KIND_HTOD); defaults without it."""
    if not {"id", "name"} <= schema.columns(table):
        return dict(defaults)
    labels: dict[int, str] = {}
    for code, name in schema.conn.execute(f"SELECT id, name FROM {_quote(table)}"):
        suffix = str(name).split(prefix, 1)[-1] if prefix in str(name) else str(name)
        if isinstance(code, int) and suffix in by_suffix:
            labels[code] = by_suffix[suffix]
    return labels


def _labels(codes: np.ndarray, labels: dict[int, str], fallback: str) -> pd.Categorical:
    """Categorical of labels for integer codes (a loop over distinct codes only)."""
    distinct, inverse = np.unique(codes, return_inverse=True)
    names = [labels.get(int(c), fallback) for c in distinct]
    cat_codes, categories = pd.factorize(pd.Index(names, dtype=object))
    return _categorical(cat_codes[inverse], categories)


def _gpu_activity_columns(
    schema: Schema, table: str, extra: dict[str, str], notes: list[str], what: str
) -> dict[str, np.ndarray]:
    """Columns common to copies/memsets (+ ``extra`` ones) as int64 arrays."""
    cols = schema.columns(table)
    fields = {
        **_interval_fields(cols),
        "device": _int_expr(cols, "deviceId"),
        "stream": _int_expr(cols, "streamId"),
        "bytes": _int_expr(cols, "bytes", default=0),
        "correlation": _int_expr(cols, "correlationId"),
        "process": _gpu_process_expr(cols),
        **extra,
    }
    arrays, dropped = _fetch_int_columns(schema.conn, table, fields, "1")
    notes.extend(_dropped_note(dropped, what, table))
    return _usable_devices(arrays, table, notes)


def _memcpy_columns(schema: Schema, notes: list[str]) -> dict[str, object] | None:
    """The copy table's columns (kinds as Categoricals; the process may still be -1), or None."""
    if not schema.has(MEMCPY_TABLE):
        return None
    cols = schema.columns(MEMCPY_TABLE)
    extra = {
        "kind": _int_expr(cols, "copyKind"),
        "src_kind": _int_expr(cols, "srcKind"),
        "dst_kind": _int_expr(cols, "dstKind"),
    }
    data = _gpu_activity_columns(schema, MEMCPY_TABLE, extra, notes, "memcpy")
    copy_kinds = _enum_labels(
        schema, "ENUM_CUDA_MEMCPY_OPER", _COPY_KIND_BY_ENUM_SUFFIX, COPY_KINDS, "_KIND_"
    )
    memory_kinds = _enum_labels(
        schema, "ENUM_CUDA_MEM_KIND", _MEMORY_KIND_BY_ENUM_SUFFIX, MEMORY_KINDS, "_KIND_"
    )
    columns: dict[str, object] = dict(data)
    columns["kind"] = _labels(data["kind"], copy_kinds, "other")
    columns["src_kind"] = _labels(data["src_kind"], memory_kinds, "unknown")
    columns["dst_kind"] = _labels(data["dst_kind"], memory_kinds, "unknown")
    return columns


def _memset_columns(schema: Schema, notes: list[str]) -> dict[str, object] | None:
    """The memset table's columns (the process may still be -1), or None without the table."""
    if not schema.has(MEMSET_TABLE):
        return None
    return dict(_gpu_activity_columns(schema, MEMSET_TABLE, {}, notes, "memset"))


# ---------------------------------------------------------------------------------------------
# CUDA API calls


def strip_api_version(name: str) -> str:
    """``cudaLaunchKernel_v7000`` -> ``cudaLaunchKernel`` (nsys appends the API version)."""
    return _API_VERSION_SUFFIX.sub("", name)


def _backtrace_classes(schema: Schema) -> tuple[int, ...]:
    """eventClass codes of the CUDA backtrace rows (from ENUM_NSYS_EVENT_CLASS when present)."""
    table = "ENUM_NSYS_EVENT_CLASS"
    if not {"id", "name"} <= schema.columns(table):
        return BACKTRACE_EVENT_CLASSES
    rows = schema.conn.execute(f"SELECT id FROM {table} WHERE name LIKE '%CUDABACKTRACE%'").fetchall()
    return tuple(int(r[0]) for r in rows) or BACKTRACE_EVENT_CLASSES


def _api_table(schema: Schema, notes: list[str]) -> pd.DataFrame:
    """Runtime and driver calls (CUPTI_ACTIVITY_KIND_RUNTIME holds both; _DRIVER if present)."""
    parts: list[pd.DataFrame] = []
    for table, default_source in ((RUNTIME_TABLE, "runtime"), (DRIVER_TABLE, "driver")):
        part = _api_part(schema, table, default_source, notes) if schema.has(table) else None
        if part is not None:
            parts.append(part)
    if not parts:
        notes.append(f"no {RUNTIME_TABLE} table: CUDA API calls were not recorded (launch overhead unknown)")
        return make_table(API_COLUMNS, {}, "api")
    if len(parts) == 1:
        return parts[0]
    combined = pd.concat(parts, ignore_index=True)
    for col in ("name", "source"):  # concat of differing categories gives plain strings
        combined[col] = union_categoricals([p[col] for p in parts])
    return combined


def _api_part(schema: Schema, table: str, default_source: str, notes: list[str]) -> pd.DataFrame | None:
    cols = schema.columns(table)
    if not {"start", "end"} <= cols or not ({"nameId"} & cols or {"name"} & cols):
        return None
    where = "1"
    if "eventClass" in cols:
        # backtrace rows are skipped, except invalid ones: they are counted in the dropped-rows
        # note (over the whole table) and then dropped with the other invalid rows
        where = (
            f"COALESCE(eventClass, 0) NOT IN ({', '.join(map(str, _backtrace_classes(schema)))}) "
            f'OR start IS NULL OR "end" IS NULL OR "end" < start'
        )
    fields = {
        **_interval_fields(cols),
        "thread": _int_expr(cols, "globalTid"),
        "correlation": _int_expr(cols, "correlationId"),
        "event_class": _int_expr(cols, "eventClass"),
    }
    if "nameId" in cols:
        fields["name_id"] = _int_expr(cols, "nameId")
    arrays, dropped = _fetch_int_columns(schema.conn, table, fields, f"({where})")
    notes.extend(_dropped_note(dropped, "API", table))
    data: dict[str, object] = {k: v for k, v in arrays.items() if k in API_COLUMNS}
    thread = arrays["thread"]
    data["process"] = np.where(thread >= 0, _process_of_thread(thread), -1)
    if "nameId" in cols:
        lookup = _string_lookup(schema.conn, arrays["name_id"])
        names = _categorical_from_ids(arrays["name_id"], lookup, strip_api_version)
    else:  # very old exports carried the name inline
        kept = f'({where}) AND start IS NOT NULL AND "end" IS NOT NULL AND "end" >= start'
        text = [r[0] or "" for r in schema.conn.execute(f"SELECT name FROM {table} WHERE {kept}")]
        names = _categorical(*pd.factorize(pd.Index([strip_api_version(t) for t in text], dtype=object)))
    data["name"] = names
    data["source"] = _api_sources(
        arrays["event_class"], names, default_source, has_class="eventClass" in cols
    )
    return make_table(API_COLUMNS, data, "api")


def _api_sources(
    event_class: np.ndarray, names: pd.Categorical, default_source: str, *, has_class: bool
) -> pd.Categorical:
    """runtime | driver: from eventClass when recorded, else from the name (cu* but not cuda*)."""
    if has_class:
        is_driver = event_class == DRIVER_EVENT_CLASS
    else:
        driver_names = [str(c).startswith("cu") and not str(c).startswith("cuda") for c in names.categories]
        is_driver = (
            np.asarray(driver_names, dtype=bool)[names.codes] if len(names) else np.zeros(0, dtype=bool)
        )
        if default_source == "driver":
            is_driver = np.ones(len(names), dtype=bool)
    return _categorical(is_driver.astype(np.int8), ["runtime", "driver"])


def _launch_notes(kernels: pd.DataFrame, api: pd.DataFrame) -> list[str]:
    """Say how many kernels have no launching call with the same (process, correlation)."""
    if not len(api):
        return []
    kernel_keys, api_keys = join_keys(
        kernels["process"].to_numpy(),
        kernels["correlation"].to_numpy(),
        api["process"].to_numpy(),
        api["correlation"].to_numpy(),
    )
    # the calls' keys come nearly sorted (time order, rising correlation ids): a stable sort is
    # close to linear, and a binary search per kernel beats pandas' hash join (~0.12 vs 0.24 s
    # for 1M kernels and 1.9M calls)
    launched = sorted_contains(np.sort(api_keys, kind="stable"), kernel_keys)
    unlaunched = int((~launched).sum())
    if not unlaunched:
        return []
    return [
        f"{unlaunched} of {len(kernels)} kernels have no launching runtime/driver call with the same "
        "(process, correlation id) in the export (launched before the capture began, or trimmed)"
    ]


# ---------------------------------------------------------------------------------------------
# NVTX


def _nvtx_ranges(schema: Schema, notes: list[str], compact: bool = False) -> pd.DataFrame:
    """Push/pop (59) and start/end (60) ranges; marks and other event types are not ranges.

    Exports with NVTX-annotated frameworks hold several ranges per kernel (4.8M for 1M kernels
    in PyTorch traces), so integer columns take the bulk path (:func:`_fetch_int_columns`) and
    names are built from codes into the distinct texts (:func:`_nvtx_names`). ``compact``: names
    as emit_nvtx forms and numbers (``COMPACT_RANGE_COLUMNS``, :func:`_nvtx_forms`) instead.
    """
    if not schema.has(NVTX_TABLE):
        notes.append(f"no {NVTX_TABLE} table: NVTX ranges were not recorded")
        return make_table(RANGE_COLUMNS, {}, "ranges")
    cols = schema.columns(NVTX_TABLE)
    if not {"start", "end", "eventType"} <= cols:
        notes.append(f"{NVTX_TABLE} lacks start/end/eventType columns: NVTX ranges not read")
        return make_table(RANGE_COLUMNS, {}, "ranges")
    where = f"eventType IN ({NVTX_PUSHPOP_RANGE}, {NVTX_STARTEND_RANGE})"
    fields = {
        **_interval_fields(cols),
        "thread": _int_expr(cols, "globalTid"),
        "text_id": _nvtx_text_id_expr(cols),
        "domain_id": _int_expr(cols, "domainId", default=DEFAULT_NVTX_DOMAIN_ID),
    }
    coder = _FormCoder() if compact else _TextCoder()
    text = ('"text"', "text_id") if "text" in cols else None
    with _DomainNameRead(schema, cols) as domain_names:
        rows = _nvtx_rows(schema, fields, where, text, coder, domain_names.start_if_used)
        named_domains = domain_names.result()
    if rows.dropped:
        notes.append(
            f"{rows.dropped} NVTX ranges with a missing, reversed (end < start) or out-of-range "
            "start/end were dropped"
        )
    count = len(rows.inline)
    if not count:
        return make_table(RANGE_COLUMNS, {}, "ranges")
    thread = rows.ints["thread"]
    process = np.where(thread >= 0, _process_of_thread(thread), -1)
    data: dict[str, object] = {
        "process": process,
        "thread": thread,
        "start": rows.ints["start"],
        "end": rows.ints["end"],
        **coder.columns(schema.conn, rows),
        "domain": _nvtx_domains(named_domains, process, rows.ints["domain_id"], notes),
        "source": _categorical_constant("nvtx", count),
        "device": np.full(count, -1, dtype=np.int32),
    }
    # the text codes, text ids and domain ids are spent: freed before the table copies its
    # columns into blocks, the read's memory peak (~150 MB less for 4.8M ranges)
    del rows
    return make_table(COMPACT_RANGE_COLUMNS if compact else RANGE_COLUMNS, data, "ranges")


class _TextCoder:
    """Codes each slice's texts in one dict shared by the reading threads (full names).

    Every slice extends the same dict, so a text repeated across slices is stored and hashed
    once (with emit_nvtx names, 4.6M of them for 1M kernels, a second pass over per-slice
    distinct texts cost 1.5-4 s); the lock makes each slice's numbering atomic.
    """

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        return (self.coded(texts),)

    def coded(self, texts: list[str]) -> np.ndarray:
        """The code of each text in the shared dict (new texts get the next codes)."""
        with self.lock:
            return code_names(self.code, texts)

    def columns(self, conn: sqlite3.Connection, rows: NvtxRows) -> dict[str, object]:
        return {"name": _nvtx_names(conn, rows, self.code)}


class _FormCoder(_TextCoder):
    """Splits each text into its emit_nvtx form and numbers; only the forms are coded.

    The forms are few (98 for the 4.6M distinct names of 1M kernels), so no per-range string
    outlives its slice: the table holds a code and two numbers per range. Texts are split a
    chunk at a time: the split's byte buffers and the forms' strings of whole 1M-row slices, on
    both reading threads at once, put ~0.9 GB on the read's peak for 4.8M names.

    Where texts repeat (an NVTX-dense export: thousands of names), each distinct text is split
    once and remembered (``known``: text -> its row in ``split``, shared by the threads); where
    they do not (emit_nvtx's own name per range), that dict would only grow, so after the first
    chunk of mostly new texts every text is split as it comes. The result is the same either way.
    """

    def __init__(self) -> None:
        super().__init__()
        self.known: dict[str, int] | None = {}
        self.split: list[np.ndarray] = [np.empty(0, np.int64) for _ in range(1 + len(emit_nvtx.FIELDS))]

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        chunks = [self._chunk(chunk) for chunk in _chunks(texts, _SPLIT_CHUNK)]
        if not chunks:
            return tuple(np.empty(0, np.int64) for _ in range(1 + len(emit_nvtx.FIELDS)))
        return tuple(np.concatenate(column) for column in zip(*chunks, strict=True))

    def _chunk(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        """Form codes and numbers of one chunk of texts."""
        with self.lock:
            if self.known is not None:
                seen = len(self.known)
                rows = code_names(self.known, texts)
                first = emit_nvtx.first_rows(rows)  # new codes first appear in code order
                new = [texts[i] for i in first[rows[first] >= seen].tolist()]
                if len(new) <= len(texts) // 2:
                    parts = emit_nvtx.split_list(new)
                    columns = (code_names(self.code, parts.forms), *parts.numbers)
                    self.split = [np.concatenate(pair) for pair in zip(self.split, columns, strict=True)]
                    return tuple(column[rows] for column in self.split)
                self.known = None  # mostly new texts: names are not repeating, stop remembering
        parts = emit_nvtx.split_list(texts)
        return (self.coded(parts.forms), *parts.numbers)

    def columns(self, conn: sqlite3.Connection, rows: NvtxRows) -> dict[str, object]:
        return _nvtx_forms(conn, rows, self.code)


_SPLIT_CHUNK = 1 << 17


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    """``values`` in consecutive pieces of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class NvtxRows:
    """The range rows as read: int64 columns, and what the coder made of their inline texts.

    ``inline`` marks rows with an inline ``text``; ``texts`` are the coder's arrays, one value
    per such row in row order (:class:`_TextCoder`: the texts' codes, numbered in whichever order
    the reading threads got to them, which the caller renumbers; :class:`_FormCoder`: form codes
    and the numbers).
    """

    ints: dict[str, np.ndarray]
    inline: np.ndarray
    texts: tuple[np.ndarray, ...]
    dropped: int = 0


def _nvtx_text_id_expr(cols: set[str]) -> str:
    """textId, or :data:`_HAS_TEXT` where the row has an inline text (which then names it).

    Negative textIds (none in real exports) are clamped to -1, the unknown id, so that the marker
    means "inline text" only.
    """
    text_id = f"MAX({_int_expr(cols, 'textId')}, -1)" if "textId" in cols else "-1"
    return f'CASE WHEN "text" IS NOT NULL THEN {_HAS_TEXT} ELSE {text_id} END' if "text" in cols else text_id


def _nvtx_rows(
    schema: Schema,
    fields: dict[str, str],
    where: str,
    text: tuple[str, str] | None,
    code: Callable[[list[str]], tuple[np.ndarray, ...]],
    seen: Callable[[Slice], None] = lambda piece: None,
) -> NvtxRows:
    """Read the range rows in rowid slices, coding each slice's inline texts as it is read.

    Only a slice's texts are held as Python strings at a time (per reading thread); what is
    kept is what ``code`` makes of them (per text: a code, or a form code and numbers). Slices
    are shared with a helper thread (:func:`_map_slices`); ``code`` serialises what it shares.
    ``seen`` is shown every slice as it is read (on the thread that read it).
    """

    def read(conn: sqlite3.Connection, condition: str) -> tuple[Slice, tuple[np.ndarray, ...]] | None:
        piece = _fetch_slice(conn, NVTX_TABLE, fields, condition, text)
        if piece is None:
            return None
        seen(piece)
        coded = code(piece.texts)
        # the per-row strings go now, not when the next slice is read
        return Slice(piece.ints, piece.has_text, [], piece.dropped), coded

    ints: dict[str, list[np.ndarray]] = {key: [] for key in fields}
    inline: list[np.ndarray] = []
    coded: list[tuple[np.ndarray, ...]] = []
    dropped = 0
    for found in _map_slices(schema, NVTX_TABLE, where, read, _shared_slice_rows()):
        if found is None:
            continue
        piece, slice_coded = found
        dropped += piece.dropped
        for key, values in piece.ints.items():
            ints[key].append(values)
        inline.append(piece.has_text)
        coded.append(slice_coded)
    if not inline:
        empty = np.empty(0, np.int64)
        texts = tuple(empty for _ in code([]))
        return NvtxRows({key: empty for key in fields}, np.empty(0, bool), texts, dropped)
    return NvtxRows(
        ints=_concatenated(ints),
        inline=np.concatenate(inline),
        texts=tuple(np.concatenate(column) for column in zip(*coded, strict=True)),
        dropped=dropped,
    )


def _concatenated(chunks_by_key: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Each key's chunks as one array, the chunks of a key freed before the next key's copy.

    A comprehension kept every chunk alive until the end, so the read's columns were held twice
    at once: the five columns of 4.8M NVTX ranges put ~150 MB more on the read's heap peak.
    """
    whole: dict[str, np.ndarray] = {}
    for key in list(chunks_by_key):
        chunks = chunks_by_key.pop(key)
        whole[key] = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    # the freed chunks lie inside the C heaps, which free() does not shrink: ~300 MB of the
    # 4.8M NVTX ranges' slices stayed resident through the rest of the read
    release_freed_memory()
    return whole


def _shared_slice_rows() -> int:
    """Rows per slice of a table that two threads share (:func:`_map_slices`): a quarter of
    :data:`_SLICE_ROWS`.

    The read ends when the last slice is coded: with 1M-row NVTX slices the last one was read by
    one thread alone (~1.3 s of a 13 s read of 1M kernels and 4.8M ranges); 256k-row slices end
    it ~0.5 s sooner. The tables read by one thread keep 1M-row slices: 256k-row ones cost them
    ~80 MB more peak memory and no time.
    """
    return max(1, _SLICE_ROWS // 4)


def _map_slices(
    schema: Schema,
    table: str,
    where: str,
    read: Callable[[sqlite3.Connection, str], Read],
    slice_rows: int | None = None,
) -> list[Read]:
    """``read(connection, condition)`` of every rowid slice of ``table``, in slice order.

    With a helper connection (:attr:`Schema.helper_connection`) and several slices, a helper
    thread takes slices too, each thread the next unread one: in a PyTorch trace the NVTX
    table is the biggest of the three read side by side (4.8M ranges for 1M kernels) and,
    alone on one thread, finished seconds after the kernel and API tables; shared, the
    second core works on it once those are read. The result does not depend on which thread
    read which slice. ``slice_rows``: rows per slice (default :data:`_SLICE_ROWS`).
    """
    slices = _slice_conditions(schema.conn, table, where, slice_rows)
    if len(slices) < 2 or schema.helper_connection is None:
        return [read(schema.conn, condition) for condition in slices]
    results: list[Read | None] = [None] * len(slices)
    unread = iter(range(len(slices)))  # next() on it is atomic (it holds the GIL)
    failed = threading.Event()

    def drain(conn: sqlite3.Connection) -> None:
        try:
            for index in unread:
                if failed.is_set():
                    return
                results[index] = read(conn, slices[index])
        except BaseException:
            failed.set()
            raise

    with closing(schema.helper_connection()) as helper_conn, ThreadPoolExecutor(max_workers=1) as pool:
        helper = pool.submit(drain, helper_conn)
        try:
            drain(schema.conn)
        finally:
            helper_error = helper.exception()
        if helper_error is not None:
            raise helper_error
    return results  # type: ignore[return-value]  # every slice was read


def _nvtx_names(conn: sqlite3.Connection, rows: NvtxRows, text_code: dict[str, int]) -> pd.Categorical:
    """COALESCE(text, StringIds.value via textId) per range, as codes into the distinct names.

    textIds are resolved for their distinct values only and coded in the same dict as the
    inline texts, so a text that appears both inline and through a textId is one category.
    Categories are in order of first appearance (inline texts in table order, then the
    registered names), found by one integer factorisation of the codes: the threads' numbering
    depends on which read which slice, this order does not. Sorting the names instead cost
    4.3 s when every range has its own text (``op_id = N`` suffixes); no analysis depends on
    the order of a name column's categories.
    """
    by_id = ~rows.inline
    registered = _registered_names(conn, rows.ints["text_id"][by_id])
    registered_codes = code_names(text_code, np.asarray(registered.categories, dtype=object).tolist())
    names = names_by_code(text_code)
    text_code.clear()  # its 4.6M-entry hash table is spent (emit_nvtx names)
    final, first_seen = pd.factorize(np.concatenate([rows.texts[0], registered_codes]))
    n_inline = len(rows.texts[0])
    codes = np.empty(len(rows.inline), dtype=np.int64)
    codes[rows.inline] = final[:n_inline]
    codes[by_id] = final[n_inline:][registered.codes.astype(np.int64)]
    return _categorical_of_distinct(codes, pd.Index(names[first_seen], dtype=object))


def _nvtx_forms(conn: sqlite3.Connection, rows: NvtxRows, form_code: dict[str, int]) -> dict[str, object]:
    """The compact name columns: emit_nvtx form (categorical) and numbers per range.

    Registered names (textIds) are split like the inline texts and coded in the same dict, so
    a name that appears both inline and through a textId has one form and the same numbers.
    Forms are numbered in order of first appearance (the threads' numbering is not fixed).
    """
    by_id = ~rows.inline
    registered = _registered_names(conn, rows.ints["text_id"][by_id])
    parts = emit_nvtx.split_list(np.asarray(registered.categories, dtype=object).tolist())
    registered_forms = code_names(form_code, parts.forms)
    registered_rows = registered.codes.astype(np.int64)
    per_row = [np.empty(len(rows.inline), dtype=np.int64) for _ in rows.texts]
    registered_columns = (registered_forms, *parts.numbers)
    for column, inline, registered_values in zip(per_row, rows.texts, registered_columns, strict=True):
        column[rows.inline] = inline
        column[by_id] = registered_values[registered_rows]
    form_codes, first_seen = pd.factorize(per_row[0])
    forms = pd.Index(names_by_code(form_code)[first_seen], dtype=object)
    return {
        RANGE_FORM_COLUMN: _categorical_of_distinct(form_codes.astype(np.int64), forms),
        **dict(zip(RANGE_NUMBER_COLUMNS, per_row[1:], strict=True)),
    }


def _registered_names(conn: sqlite3.Connection, text_ids: np.ndarray) -> pd.Categorical:
    """The StringIds names of the rows without an inline text (resolved per distinct id)."""
    return _categorical_from_ids(text_ids, _string_lookup(conn, text_ids))


def _categorical_of_distinct(codes: np.ndarray, categories: pd.Index) -> pd.Categorical:
    """``pd.Categorical.from_codes(codes, categories=categories)`` for categories known distinct.

    ``from_codes`` checks that the categories are unique and not NaN, which hashes every one
    of them: ~1 s and a 4.6M-entry hash table for the emit_nvtx names of 1M kernels, whose
    uniqueness :func:`~infersight.model.factorize_names` guarantees. Same dtype and codes;
    pandas versions without the unchecked constructor take the checked path.
    """
    from_fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    if from_fastpath is None:  # pragma: no cover - every supported pandas has it
        return pd.Categorical.from_codes(codes, categories=categories)
    return pd.Categorical.from_codes(codes, dtype=from_fastpath(categories, False))


DomainNames = tuple[dict[tuple[int, int], str], dict[int, str]]  # by (process, domainId), by domainId


class _DomainNameRead:
    """The NVTX domain names (:func:`_nvtx_domain_names`), read beside the range slices.

    They take a scan of the whole NVTX table (~0.5 s for 4.8M ranges), needed only when a range
    is in a named domain. Read after the ranges, that scan was the last work of the NVTX read,
    with the other core idle (~0.9 s of a 13 s read of 1M kernels). Instead the first slice that
    uses a named domain starts it on a helper connection (:attr:`Schema.helper_connection`) in
    a thread of its own, while the remaining slices are read. Without a helper connection,
    :meth:`result` reads the names after the slices, as before.
    """

    def __init__(self, schema: Schema, cols: set[str]) -> None:
        self._schema, self._cols = schema, cols
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[DomainNames] | None = None
        self._used = False

    def start_if_used(self, piece: Slice) -> None:
        """Start the read if ``piece`` has a range in a named domain (once)."""
        if self._used or not bool((piece.ints["domain_id"] != DEFAULT_NVTX_DOMAIN_ID).any()):
            return
        with self._lock:
            if self._used:
                return
            self._used = True
            open_helper = self._schema.helper_connection
            if open_helper is not None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infersight-domains")
                self._future = self._pool.submit(self._read_on_helper, open_helper)

    def _read_on_helper(self, open_helper: Callable[[], sqlite3.Connection]) -> DomainNames:
        with closing(open_helper()) as conn:
            return _nvtx_domain_names(conn, self._cols)

    def result(self) -> DomainNames | None:
        """The names, or None when every range is in the default domain (nothing was scanned)."""
        if self._future is not None:
            return self._future.result()
        if self._used:
            return _nvtx_domain_names(self._schema.conn, self._cols)
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _nvtx_domains(
    named_domains: DomainNames | None, process: np.ndarray, domain_id: np.ndarray, notes: list[str]
) -> pd.Categorical:
    """Domain name per range: the text of the eventType 75 row with that domainId ('' = default).

    ``named_domains``: those texts (:func:`_nvtx_domain_names`), None when every range is in the
    default domain (:class:`_DomainNameRead` saw no other and scanned nothing). Domain ids are
    handed out per process, so the (process, domainId) pair is matched first, then the domainId
    alone. A domain whose creation row is missing (trimmed exports) is named ``domain <id>``.
    Pairs are found by factorising one int64 key per row (process code times the number of
    distinct domain ids plus the domain code): only the few distinct pairs are looked at in
    Python. When no domain in use has a per-process name, the domain alone names a range and the
    process is not looked at (two hash passes fewer over 4.8M ranges).
    """
    if named_domains is None:  # every range in the default domain (PyTorch's emit_nvtx, most exports)
        return _categorical_constant("", len(domain_id))
    by_pair, by_id = named_domains
    domain_codes, domains = pd.factorize(domain_id)
    unnamed: set[int] = set()

    def label(proc: int | None, dom: int) -> str:
        if dom == DEFAULT_NVTX_DOMAIN_ID:
            return ""
        if proc is not None and (proc, dom) in by_pair:
            return by_pair[(proc, dom)]
        if dom in by_id:
            return by_id[dom]
        unnamed.add(dom)
        return f"domain {dom}"

    if {dom for _, dom in by_pair}.isdisjoint(domains.tolist()):
        # no per-process name for any domain used: the domain alone names it (one hash pass)
        codes, labels = domain_codes, [label(None, int(dom)) for dom in domains.tolist()]
    else:
        process_codes, processes = pd.factorize(process)
        pair_key = process_codes.astype(np.int64) * len(domains) + domain_codes
        codes, distinct_keys = pd.factorize(pair_key)
        labels = [  # per distinct (process, domain): a handful
            label(int(processes[key // len(domains)]), int(domains[key % len(domains)]))
            for key in distinct_keys.tolist()
        ]
    if unnamed:
        notes.append(f"NVTX domain id(s) {sorted(unnamed)} have no domain-creation row: named 'domain <id>'")
    cat_codes, categories = pd.factorize(pd.Index(labels, dtype=object))
    return _categorical(cat_codes[codes], categories)


def _nvtx_domain_names(conn: sqlite3.Connection, cols: set[str]) -> DomainNames:
    """Domain names from the domain-creation rows, by (process, domainId) and by domainId."""
    by_pair: dict[tuple[int, int], str] = {}
    by_id: dict[int, str] = {}
    if not {"domainId", "globalTid"} <= cols:
        return by_pair, by_id
    text = (
        'COALESCE("text", (SELECT value FROM StringIds s WHERE s.id = n.textId))'
        if "textId" in cols
        else '"text"'
    )
    rows = conn.execute(
        f"SELECT globalTid, domainId, {text} FROM {NVTX_TABLE} n WHERE eventType = {NVTX_DOMAIN_CREATE}"
    ).fetchall()
    for tid, dom, name in rows:  # one row per domain created
        if dom is None:
            continue
        proc = int(tid) & ~THREAD_ID_BITS if tid is not None else -1
        by_pair.setdefault((proc, int(dom)), name or "")
        by_id.setdefault(int(dom), name or "")
    return by_pair, by_id


# ---------------------------------------------------------------------------------------------
# GPU description


def _gpus(schema: Schema, kernels: pd.DataFrame, notes: list[str]) -> dict[int, GpuInfo]:
    """GpuInfo per CUDA device, keyed by the device id kernels use (CUDA ordinal).

    * TARGET_INFO_GPU (2022+): ``id`` is nsys' GPU id, ``cuDevice`` the CUDA ordinal; rows of
      non-CUDA adapters (Intel iGPU, "Microsoft Basic Render Driver") have compute capability 0
      and are skipped. ``clockRate`` is in Hz, ``memoryBandwidth`` in bytes/s.
    * TARGET_INFO_CUDA_DEVICE (2025+): ``gpuId`` -> ``cudaId`` overrides that mapping.
    * TARGET_INFO_CUDA_GPU (2021): CUPTI's device record, ``deviceId`` = ordinal,
      ``coreClockRate`` in kHz, ``globalMemoryBandwidth`` in kB/s.
    """
    gpus: dict[int, GpuInfo] = {}
    bad: set[str] = set()
    for info in [*_gpus_from_cuda_gpu(schema, bad), *_gpus_from_target_info(schema, bad)]:
        current = gpus.get(info.device)
        gpus[info.device] = _merge_gpu(current, info) if current else info
    devices = sorted(int(d) for d in np.unique(kernels["device"].to_numpy()))
    unnamed = [d for d in devices if d not in gpus or gpus[d].name is None]
    for device in devices:
        gpus.setdefault(device, GpuInfo(device=device))
    if unnamed:
        notes.append(
            f"the export does not describe GPU(s) {unnamed} (no TARGET_INFO_GPU row): pass the GPU "
            "model to get hardware peaks"
        )
    if bad:
        notes.append(
            f"GPU description field(s) {sorted(bad)} hold a value that is not a finite positive "
            "number (NaN, Infinity, text or out of range): ignored, as if not recorded"
        )
    return dict(sorted(gpus.items()))


def _merge_gpu(first: GpuInfo, second: GpuInfo) -> GpuInfo:
    """Fields of ``first``, completed by ``second`` where ``first`` has none."""
    return GpuInfo(
        device=first.device,
        name=first.name or second.name,
        sm_count=first.sm_count or second.sm_count,
        memory_bytes=first.memory_bytes or second.memory_bytes,
        compute_capability=first.compute_capability or second.compute_capability,
        clock_khz=first.clock_khz or second.clock_khz,
        memory_bandwidth_bytes_per_s=first.memory_bandwidth_bytes_per_s
        or second.memory_bandwidth_bytes_per_s,
    )


def _positive(row: dict[str, object], key: str, bad: set[str]) -> int | None:
    """``row[key]`` as a positive int below 2**63; None when absent, zero or unusable.

    Unusable values (NaN, Infinity — ``int(inf)`` raised OverflowError —, text, huge) are
    recorded in ``bad`` by their field name so that one note can say they were ignored.
    """
    value = row.get(key)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 2**63:
        return int(value)
    bad.add(key)
    return None


def _capability(major: object, minor: object) -> str | None:
    if not isinstance(major, int) or major <= 0:
        return None
    return f"{major}.{minor if isinstance(minor, int) else 0}"


def _select_rows(schema: Schema, table: str, wanted: Iterable[str]) -> list[dict[str, object]]:
    cols = schema.columns(table)
    present = [c for c in wanted if c in cols]
    if not present:
        return []
    cursor = schema.conn.execute(f"SELECT {', '.join(map(_quote, present))} FROM {_quote(table)}")
    return [dict(zip(present, row, strict=True)) for row in cursor]


def _gpus_from_target_info(schema: Schema, bad: set[str]) -> list[GpuInfo]:
    rows = _select_rows(
        schema,
        "TARGET_INFO_GPU",
        ("id", "deviceId", "cuDevice", "name", "smCount", "totalMemory", "memoryBandwidth", "clockRate",
         "computeMajor", "computeMinor"),
    )  # fmt: skip
    ordinal_of_gpu: dict[int, int] = {}
    for r in _select_rows(schema, "TARGET_INFO_CUDA_DEVICE", ("gpuId", "cudaId")):
        gpu_id, cuda_id = r.get("gpuId"), r.get("cudaId")
        if isinstance(gpu_id, int) and isinstance(cuda_id, int):
            ordinal_of_gpu.setdefault(gpu_id, cuda_id)
    infos: list[GpuInfo] = []
    for row in rows:
        if "computeMajor" in row and not _capability(row["computeMajor"], row.get("computeMinor")):
            continue  # not a CUDA device
        device = _target_info_ordinal(row, ordinal_of_gpu)
        if device is None:
            continue
        bandwidth = _positive(row, "memoryBandwidth", bad)
        clock = _positive(row, "clockRate", bad)
        infos.append(
            GpuInfo(
                device=device,
                name=short_name(str(row["name"])) if row.get("name") else None,
                sm_count=_positive(row, "smCount", bad),
                memory_bytes=_positive(row, "totalMemory", bad),
                compute_capability=_capability(row.get("computeMajor"), row.get("computeMinor")),
                clock_khz=clock // 1000 if clock else None,
                memory_bandwidth_bytes_per_s=float(bandwidth) if bandwidth else None,
            )
        )
    return infos


def _target_info_ordinal(row: dict[str, object], ordinal_of_gpu: dict[int, int]) -> int | None:
    gpu_id = row.get("id")
    if isinstance(gpu_id, int) and gpu_id in ordinal_of_gpu:
        return ordinal_of_gpu[gpu_id]
    for key in ("cuDevice", "deviceId", "id"):
        value = row.get(key)
        if isinstance(value, int):
            return value
    return None


def _gpus_from_cuda_gpu(schema: Schema, bad: set[str]) -> list[GpuInfo]:
    rows = _select_rows(
        schema,
        "TARGET_INFO_CUDA_GPU",
        ("deviceId", "name", "numMultiprocessors", "globalMemorySize", "globalMemoryBandwidth",
         "coreClockRate", "computeCapabilityMajor", "computeCapabilityMinor"),
    )  # fmt: skip
    infos: list[GpuInfo] = []
    for row in rows:
        device = row.get("deviceId")
        if not isinstance(device, int):
            continue
        bandwidth_kb = _positive(row, "globalMemoryBandwidth", bad)
        infos.append(
            GpuInfo(
                device=device,
                name=short_name(str(row["name"])) if row.get("name") else None,
                sm_count=_positive(row, "numMultiprocessors", bad),
                memory_bytes=_positive(row, "globalMemorySize", bad),
                compute_capability=_capability(
                    row.get("computeCapabilityMajor"), row.get("computeCapabilityMinor")
                ),
                clock_khz=_positive(row, "coreClockRate", bad),
                memory_bandwidth_bytes_per_s=bandwidth_kb * 1000.0 if bandwidth_kb else None,
            )
        )
    return infos
