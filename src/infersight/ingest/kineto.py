"""PyTorch-profiler (Kineto) Chrome-trace JSON -> :class:`Trace`.

Reads ``.json``, ``.json.gz`` and ``.pt.trace.json(.gz)`` files (SGLang ``TP-N.trace.json.gz``
and vLLM profiler dumps are the same format). Texts of 64 MiB or more are read in bounded chunks
(:mod:`infersight.ingest.kineto_stream`), each turned into table parts (:class:`Chunk`) at once;
smaller ones are read in one go, as one chunk. Events are decoded by msgspec into typed
structs holding only the fields the tables read (:mod:`infersight.ingest.kineto_structs`); a
chunk msgspec cannot read as orjson would is read the older way: events we never use (Python
stack frames, flow arrows, operator args) cut from the text (:mod:`infersight.ingest.kineto_text`),
the rest parsed by orjson into dicts. Either way the events are bucketed by ``cat`` and every
table is built column-wise (:mod:`infersight.ingest.kineto_tables`). The few args analyses
use (collective sizes, operator input shapes) become optional columns
(:mod:`infersight.ingest.kineto_args`), and the file's first event time ``Trace.first_event_ns``,
so no analysis reads the file again.

Timestamps: Kineto writes ``ts``/``dur`` in µs, as floats with 3 decimals (ns resolution) in
recent versions. Recent versions also make ``ts`` relative to ``baseTimeNanoseconds`` (a few
1e12 µs: float64 keeps every ns). Older ones (e.g. HTA's ``ns_resolution`` trace,
``displayTimeUnit: "ns"``) write epoch-based µs with ns decimals, ~1.7e15 µs, which float64
cannot hold to the ns (its step there is 0.25 µs); for those files the ``ts`` numbers are turned
into integer ns in the text before parsing, so no digit is lost.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import compress, repeat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pandas as pd

from infersight import progress as progress_stages
from infersight.errors import InputError
from infersight.ingest import kineto_stream, kineto_structs, kineto_text
from infersight.ingest.checks import (
    negative_sizes_unknown,
    short_name,
    shorten_long_names,
    stream_overlap_note,
    time_in_limits,
)
from infersight.ingest.kineto_columns import (
    Event,
    EventBatch,
    device_column,
    event_batch,
    exact_int_column,
    us_to_ns,
    values,
    values_or,
)
from infersight.ingest.kineto_tables import (
    API_SOURCES,
    RANGE_SOURCES,
    Part,
    api_part,
    api_table,
    cpu_ops_as_kernels_table,
    kernel_part,
    kernels_table,
    memcpy_part,
    memcpy_table,
    memset_part,
    memset_table,
    range_part,
    ranges_table,
    source_part,
)
from infersight.model.trace import GpuInfo, Trace
from infersight.progress import NO_PROGRESS, Progress
from infersight.safe_io import check_regular_file

DEFAULT_MAX_DECOMPRESSED_BYTES = 4 * 1024**3
MAX_DECOMPRESSED_CAP = 2**50  # 1 PiB: the largest cap the environment variable may set
_GZIP_READ_BYTES = 1 << 20  # compressed bytes fed to zlib at a time
_GZIP_OUTPUT_BYTES = 16 << 20  # decompressed bytes per zlib call
STREAM_PIECE_BYTES = 4 << 20  # decompressed pieces of a streamed read: chunks end close to their size
BLANK_RUN_BYTES = 64 << 10  # JSON whitespace runs this long are cut to one space before parsing
_BLANK_RUN = re.compile(rb"[ \t\r\n]{%d,}" % BLANK_RUN_BYTES)
# Environment override of the cap (bytes), e.g. INFERSIGHT_MAX_DECOMPRESSED_BYTES=17179869184 for 16 GiB.
MAX_DECOMPRESSED_ENV = "INFERSIGHT_MAX_DECOMPRESSED_BYTES"
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, no raw/zlib streams

KERNEL_CAT = "kernel"
MEMCPY_CAT = "gpu_memcpy"
MEMSET_CAT = "gpu_memset"
CPU_OP_CAT = "cpu_op"
WANTED_CATS = (KERNEL_CAT, MEMCPY_CAT, MEMSET_CAT, *API_SOURCES, *RANGE_SOURCES)
_WANTED_SET = frozenset(WANTED_CATS)
GRAPH_LAUNCH_APIS = ("cudaGraphLaunch", "hipGraphLaunch", "cuGraphLaunch")
NO_GPU_KERNELS = (
    "no GPU kernels in the trace (CPU-only capture?) — pass --cpu-ops-as-kernels to analyse "
    "the CPU operator timeline instead"
)
# Share of kernels without a launching API call above which the trace gets a note.
UNLAUNCHED_NOTE_SHARE = 0.05

# Top-level keys that are not copied into Trace.metadata: the events, the GPU list (-> gpus) and
# libkineto's log lines ("INFO": a list of profiler log messages, no facts about the run).
_NOT_METADATA = frozenset({"traceEvents", "deviceProperties", "INFO"})
# Header dicts are flattened this many levels deep ("infersight_capture.scenario.batch"); lists
# and anything nested deeper become compact JSON.
METADATA_FLATTEN_LEVELS = 2
METADATA_VALUE_CAP = 500  # characters per value; longer ones are cut and end in "…"
_RANK_IN_NAME = (re.compile(r"rank[-_]?(\d+)", re.IGNORECASE), re.compile(r"(?<![A-Za-z])TP-(\d+)"))


@dataclass
class Chunk:
    """The columns of one chunk of events (a whole file read at once is one chunk).

    ``parts``: per category read, its rows as table parts (file order); ``dropped`` and
    ``bad_device``: events dropped per category (unusable interval / device id), with the first
    bad device value; ``first_ns``: the chunk's earliest event time (see :func:`first_event_ns`).
    """

    parts: dict[str, Part]
    dropped: dict[str, int]
    bad_device: dict[str, tuple[int, Any]]
    first_ns: int | None


def read_kineto(
    path: Path,
    *,
    cpu_ops_as_kernels: bool = False,
    max_decompressed_bytes: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> Trace:
    """Read one Kineto/PyTorch-profiler trace file (one rank) into a :class:`Trace`.

    ``cpu_ops_as_kernels``: for CPU-only captures, use the dominant ``cpu_op`` events (per
    thread, the outermost ops whose self time is at least half their duration; see
    :func:`~infersight.ingest.kineto_columns.dominant_mask`) as the kernel timeline of a pseudo
    device 0 (ignored, with a note, when the trace has GPU kernels).
    ``max_decompressed_bytes`` caps the decompressed text (a gzip bomb stops there); default
    :func:`max_decompressed_bytes` (4 GiB, or ``$INFERSIGHT_MAX_DECOMPRESSED_BYTES``).
    Texts of :data:`~infersight.ingest.kineto_stream.STREAM_MIN_BYTES` or more are read in
    bounded chunks (:mod:`infersight.ingest.kineto_stream`), smaller ones whole.
    ``progress`` hears the stages and the bytes read.
    Raises :class:`InputError` for anything unreadable, truncated or not a Kineto trace.
    """
    path = Path(path)
    notes: list[str] = []
    limit = max_decompressed_bytes if max_decompressed_bytes is not None else decompressed_limit(path)
    streamed = _read_streamed(path, limit, notes, progress)
    if isinstance(streamed, bytes | bytearray):  # a small text: as one chunk when its layout allows
        streamed = kineto_stream.read_whole(streamed, functools.partial(_chunk_of_events, path)) or streamed
    if isinstance(streamed, kineto_stream.Streamed):
        chunks, top = streamed.chunks, streamed.top
    else:
        raw = streamed if streamed is not None else _read_bytes(path, limit)
        notes.clear()
        document, ts_in_ns = _load_document(path, raw, notes)
        del raw
        events, top = _trace_events(path, document)
        chunks = [chunk_of(path, events, ts_in_ns=ts_in_ns)]
        del events, document
    progress.stage(progress_stages.COLUMNS)
    return _trace_of(path, chunks, top, notes, cpu_ops_as_kernels=cpu_ops_as_kernels)


def _trace_of(
    path: Path, chunks: list[Chunk], top: dict[str, Any], notes: list[str], *, cpu_ops_as_kernels: bool
) -> Trace:
    """The trace's tables from the columns of all its chunks (in file order)."""
    _note_dropped(chunks, notes)
    parts = {cat: [chunk.parts[cat] for chunk in chunks if cat in chunk.parts] for cat in WANTED_CATS}
    firsts = [chunk.first_ns for chunk in chunks if chunk.first_ns is not None]
    kernel_dropped = sum(chunk.dropped.get(KERNEL_CAT, 0) for chunk in chunks)
    kernel_bad = sum(chunk.bad_device.get(KERNEL_CAT, (0, None))[0] for chunk in chunks)
    del chunks

    trace = Trace(source=str(path), format="kineto", notes=notes)
    trace.metadata = _metadata(top)
    trace.rank = _rank(top, path)
    trace.gpus = _gpus(top)
    trace.first_event_ns = min(firsts) if firsts else None
    range_parts = {source: source_part(parts.pop(source)) for source in RANGE_SOURCES}
    trace.ranges = ranges_table(range_parts)
    operators = range_parts.pop("cpu_op")
    del range_parts
    _fill_kernels(
        path, trace, parts.pop(KERNEL_CAT), operators, kernel_dropped + kernel_bad, cpu_ops_as_kernels
    )
    del operators
    trace.memcpy = memcpy_table(parts.pop(MEMCPY_CAT))
    trace.memset = memset_table(parts.pop(MEMSET_CAT))
    trace.api = api_table(parts)
    if trace.device_kind == "gpu":
        _complete_gpus(trace)
        notes.extend(correlation_notes(trace.kernels, trace.api))
        overlap = stream_overlap_note(trace.kernels)
        if overlap:
            notes.append(overlap)
    negative_sizes_unknown(trace)
    shorten_long_names(trace)
    trace.check_schema()
    return trace


def chunk_of(path: Path, events: list[Any], *, ts_in_ns: bool) -> Chunk:
    """Columns of one chunk of parsed events (the dicts can be dropped once this returns)."""
    buckets, others = _bucket_by_category(path, events)
    batches = {cat: event_batch(buckets.pop(cat), ts_in_ns=ts_in_ns) for cat in WANTED_CATS}
    bad_device = _check_devices(batches)
    first_ns = first_event_ns(batches, others, ts_in_ns=ts_in_ns)
    return Chunk(
        parts={cat: _part_of(cat, batch) for cat, batch in batches.items() if len(batch)},
        dropped={cat: batch.dropped for cat, batch in batches.items() if batch.dropped},
        bad_device=bad_device,
        first_ns=first_ns,
    )


def _chunk_of_events(path: Path, events: list[Any], ts_in_ns: bool) -> Chunk:
    """:func:`chunk_of` with positional arguments, for a ``functools.partial`` that pickles."""
    return chunk_of(path, events, ts_in_ns=ts_in_ns)


def _part_of(cat: str, batch: EventBatch) -> Part:
    if cat == KERNEL_CAT:
        return kernel_part(batch)
    if cat == MEMCPY_CAT:
        return memcpy_part(batch)
    if cat == MEMSET_CAT:
        return memset_part(batch)
    if cat in API_SOURCES:
        return api_part(batch, cat)
    return range_part(batch, cat)


def _read_streamed(
    path: Path, limit: int, notes: list[str], progress: Progress
) -> kineto_stream.Streamed[Chunk] | bytes | bytearray | None:
    """The file read in chunks (big texts), its whole bytes (small texts), or None: the streamed
    read gave up (an unusual layout) and :func:`_read_bytes` reads the file again, whole.

    A plain-text file below the streaming size is read whole from the same handle (one read).
    """
    too_big = _too_big(limit)
    try:
        with _opened(path, limit, too_big) as (handle, size, compressed):
            if not compressed and size < kineto_stream.STREAM_MIN_BYTES:
                # read(n) reserves n bytes up front: ask for the file's size (+1 to see it grow)
                return _checked_text(path, handle.read(size + 1), compressed, limit, too_big)
            progress.stage(progress_stages.READING, size)
            done = [0]  # compressed (file) bytes read so far, for the progress bar
            result = kineto_stream.read(
                _pieces(path, handle, limit, too_big, compressed, done),
                functools.partial(_chunk_of_events, path),
                lambda: progress.advance(done[0]),
            )
            progress.advance(done[0])
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if isinstance(result, bytearray):
        return _checked_text(path, result, compressed, limit, too_big)
    return result


def decompressed_limit(path: Path) -> int:
    """The decompressed-size cap: ``$INFERSIGHT_MAX_DECOMPRESSED_BYTES`` if set, else 4 GiB.

    The value must be a whole number of bytes from 1 to :data:`MAX_DECOMPRESSED_CAP` (``1e9``
    is accepted); anything else (``1e400``, ``nan``, ``-1``, ``4G``) is an input error rather
    than a crash or a silently ignored setting.
    """
    raw = os.environ.get(MAX_DECOMPRESSED_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_DECOMPRESSED_BYTES
    value = _byte_count(raw)
    if value is None or not 1 <= value <= MAX_DECOMPRESSED_CAP:
        raise InputError(
            path,
            f"{MAX_DECOMPRESSED_ENV}={raw[:40]!r} is not a whole number of bytes from 1 to "
            f"{MAX_DECOMPRESSED_CAP:,} (e.g. 17179869184 for 16 GiB)",
        )
    return value


def _byte_count(raw: str) -> int | None:
    """``raw`` as an integer number of bytes (``"1e9"`` too); None when it is not one."""
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("kiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _too_big(limit: int) -> str:
    return (
        f"larger than {_size_text(limit)} once decompressed (a gzip bomb, or a huge trace); if it is "
        f"genuine, raise the cap with {MAX_DECOMPRESSED_ENV}=<bytes>"
    )


def _read_bytes(path: Path, limit: int) -> bytes | bytearray:
    """The file's (decompressed) bytes, refusing anything larger than ``limit``.

    A gzip file is decompressed as a stream and stops as soon as the output passes ``limit``,
    so a bomb costs about ``limit`` of memory, never twice that (:func:`_gunzip`).
    """
    too_big = _too_big(limit)
    try:
        with _opened(path, limit, too_big) as (handle, size, compressed):
            # read(n) reserves n bytes up front: ask for the file's size (+1 to see it grow)
            data = _gunzip(path, handle, limit, too_big) if compressed else handle.read(size + 1)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    return _checked_text(path, data, compressed, limit, too_big)


@contextmanager
def _opened(path: Path, limit: int, too_big: str) -> Iterator[tuple[BinaryIO, int, bool]]:
    """The trace opened for reading: (handle at offset 0, file size, gzip or not).

    A regular file only, refused up front when the file alone is already larger than ``limit``;
    OSError is left to the caller (it reports it with the read).
    """
    check_regular_file(path, "trace")
    size = path.stat().st_size
    if size > limit:
        raise InputError(path, too_big)
    with path.open("rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        yield handle, size, compressed


def _checked_text(
    path: Path, data: bytes | bytearray, compressed: bool, limit: int, too_big: str
) -> bytes | bytearray:
    """``data`` if within ``limit`` and not blank, long blank runs cut (see :func:`_without_long_blanks`)."""
    if len(data) > limit:  # the file grew while it was read
        raise InputError(path, too_big)
    if not data or data.isspace():
        raise InputError(path, "file is empty" + (" after decompression" if compressed else ""))
    return _without_long_blanks(data)


def _pieces(
    path: Path, handle: BinaryIO, limit: int, too_big: str, compressed: bool, done: list[int]
) -> Iterator[bytes]:
    """The file's decompressed text in pieces of at most 16 MiB; ``done[0]``: file bytes read.

    Stops with the cap error as soon as the text passes ``limit`` (as :func:`_read_bytes`).
    """
    piece_bytes = min(_GZIP_OUTPUT_BYTES, STREAM_PIECE_BYTES)
    if compressed:
        yield from _gunzip_pieces(path, handle, limit, too_big, done, piece_bytes)
        return
    total = 0
    while piece := handle.read(piece_bytes):
        total += len(piece)
        done[0] = total
        if total > limit:
            raise InputError(path, too_big)
        yield piece


def _without_long_blanks(data: bytes | bytearray) -> bytes | bytearray:
    """``data`` with runs of :data:`BLANK_RUN_BYTES`+ JSON whitespace bytes cut to one space.

    Why: orjson copies its input, so a file that is mostly whitespace (2 GiB of padding) peaked
    at twice its size for nothing. Long blank runs are found by a fast substring search (only in
    files of 8 runs or more); a run that long can only sit inside a JSON string if a name holds
    64 kiB of blanks, and such names are shortened anyway (see ``ingest.checks``).
    """
    if len(data) < 8 * BLANK_RUN_BYTES:
        return data
    if all(data.find(blank * BLANK_RUN_BYTES) < 0 for blank in (b" ", b"\n")):
        return data
    return _BLANK_RUN.sub(b" ", data)


def _gunzip(path: Path, handle: BinaryIO, limit: int, too_big: str) -> bytearray:
    """Decompress every gzip member, streamed, into one bytearray of at most ``limit`` bytes.

    Pieces from :func:`_gunzip_pieces` are appended in place (a large bytearray grows by
    ``mremap``, not by copying).
    """
    out = bytearray()
    for piece in _gunzip_pieces(path, handle, limit, too_big, [0]):
        out += piece
    return out


def _gunzip_pieces(
    path: Path, handle: BinaryIO, limit: int, too_big: str, done: list[int], piece_bytes: int | None = None
) -> Iterator[bytes]:
    """Decompress every gzip member, streamed, in pieces; at most ``limit`` bytes in all.

    Compressed input is fed :data:`_GZIP_READ_BYTES` at a time and each zlib call yields at most
    :data:`_GZIP_OUTPUT_BYTES` (or ``piece_bytes``); the first byte past ``limit`` stops it. zlib checks each
    member's CRC and length, so a corrupt or truncated file is caught here. Zero padding between
    members is allowed. ``done[0]`` counts the compressed bytes read (for progress).
    """
    total = 0
    inflater: Any = zlib.decompressobj(wbits=_GZIP_WBITS)
    pending = b""
    more_output = False  # the last call filled its output: zlib may hold more without new input
    while True:
        if not pending and not more_output:
            pending = handle.read(_GZIP_READ_BYTES)
            done[0] += len(pending)
            if not pending:
                break
        if inflater is None:  # between members
            pending = pending.lstrip(b"\x00")
            if not pending:
                continue
            inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        want = min(piece_bytes or _GZIP_OUTPUT_BYTES, limit - total + 1)
        try:
            piece = inflater.decompress(pending, want)
        except zlib.error as exc:
            raise InputError(path, f"corrupt gzip data ({exc})") from None
        total += len(piece)
        if total > limit:
            raise InputError(path, too_big)
        more_output = len(piece) == want
        if inflater.eof:
            pending, inflater, more_output = inflater.unused_data, None, False
        else:
            pending = inflater.unconsumed_tail
        if piece:
            yield piece
    if inflater is not None:
        raise InputError(path, "truncated gzip file (it ends before the end-of-stream marker)")


def _load_document(path: Path, raw: bytes | bytearray, notes: list[str]) -> tuple[Any, bool]:
    """(parsed JSON, whether ``ts`` values are integer ns): the slimmed text when it parses."""
    slim = kineto_text.slim_text(raw)
    if slim is not None:
        text, ts_in_ns = kineto_text.exact_ns_timestamps(slim)
        del slim
        document = _parse_json_or_none(text)
        if document is not None:
            return document, ts_in_ns
        del text  # the slimmed text did not parse: parse it all
    raw, ts_in_ns = kineto_text.exact_ns_timestamps(raw)
    return _parse_json(path, raw, notes), ts_in_ns


def _parse_json_or_none(raw: bytes | bytearray) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _parse_json(path: Path, raw: bytes | bytearray, notes: list[str]) -> Any:
    """Parse with orjson; invalid UTF-8 inside strings is replaced (and noted), not fatal."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" not in str(exc).lower():
            raise InputError(path, f"not valid JSON, truncated or corrupt ({exc})") from None
    try:
        document = orjson.loads(raw.decode("utf-8", errors="replace"))
    except orjson.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON, truncated or corrupt ({exc})") from None
    notes.append("the file holds invalid UTF-8 bytes; they were replaced by U+FFFD")
    return document


def _trace_events(path: Path, document: Any) -> tuple[list[Any], dict[str, Any]]:
    """(events, top-level dict): ``{"traceEvents": [...], ...}`` or a bare list of events."""
    if isinstance(document, list):
        return document, {}
    if not isinstance(document, dict) or "traceEvents" not in document:
        raise InputError(path, "not a PyTorch-profiler (Kineto) trace: the JSON has no 'traceEvents' list")
    events = document["traceEvents"]
    if not isinstance(events, list):
        raise InputError(path, "'traceEvents' is not a list: not a Kineto trace")
    return events, document


def _bucket_by_category(path: Path, events: list[Any]) -> tuple[dict[str, list[Event]], list[Any]]:
    """The complete ("X") events of every category we read, by category, and the events of all
    other categories.

    One hash pass codes every event's ``cat``; each bucket is then one C-level pick of its
    positions (file order kept), instead of one comparison pass over all events per category.
    """
    try:
        categories = values(events, "cat")
    except TypeError:  # dict.get applied to something that is not a JSON object
        raise InputError(path, "'traceEvents' holds entries that are not JSON objects") from None
    try:
        codes, uniques = pd.factorize(pd.Series(categories, dtype=object))
    except TypeError:  # an unhashable "cat" (a list or an object): compare category by category
        return _bucket_one_by_one(events, categories)
    code_of = {category: code for code, category in enumerate(uniques.tolist())}
    order = np.argsort(codes, kind="stable")  # events grouped by category, file order inside
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    buckets = {
        cat: _complete_only(_pick(events, order[bounds[code_of[cat]] : bounds[code_of[cat] + 1]]))
        if cat in code_of
        else []
        for cat in WANTED_CATS
    }
    wanted = [code_of[cat] for cat in WANTED_CATS if cat in code_of]
    others = _pick(events, np.flatnonzero(~np.isin(codes, wanted)))
    return buckets, kineto_structs.without_unused(others) if kineto_structs.is_struct_list(others) else others


def _bucket_one_by_one(events: list[Any], categories: list[Any]) -> tuple[dict[str, list[Event]], list[Any]]:
    buckets = {
        cat: _complete_only(list(compress(events, map(operator.eq, categories, repeat(cat)))))
        for cat in WANTED_CATS
    }
    others = [
        e for e, c in zip(events, categories, strict=True) if not isinstance(c, str) or c not in _WANTED_SET
    ]
    return buckets, kineto_structs.without_unused(others) if kineto_structs.is_struct_list(others) else others


def _pick(events: list[Any], positions: np.ndarray) -> list[Any]:
    """``[events[i] for i in positions]`` in one C-level call."""
    if len(positions) < 2:
        return [events[int(i)] for i in positions]
    return list(operator.itemgetter(*positions.tolist())(events))


def _complete_only(events: list[Event]) -> list[Event]:
    """The complete ("ph": "X") events; duration events of other phases are not read."""
    is_complete = list(map(operator.eq, values(events, "ph"), repeat("X")))
    return events if all(is_complete) else list(compress(events, is_complete))


def _note_dropped(chunks: list[Chunk], notes: list[str]) -> None:
    for cat in WANTED_CATS:
        dropped = sum(chunk.dropped.get(cat, 0) for chunk in chunks)
        if dropped:
            notes.append(
                f"{dropped} '{cat}' events without a usable ts/dur (missing, "
                "non-numeric, boolean, negative or out of range) were dropped"
            )
    for cat in _DEVICE_CATS:
        bad = [chunk.bad_device[cat] for chunk in chunks if cat in chunk.bad_device]
        if bad:
            notes.append(
                f"{sum(count for count, _ in bad)} '{cat}' events with a device id that is not a 32-bit "
                f"integer (e.g. {str(bad[0][1])[:40]!r}) were dropped"
            )


# GPU events whose device id is checked: args.device else pid (annotations: pid only).
_DEVICE_CATS = (KERNEL_CAT, MEMCPY_CAT, MEMSET_CAT, "gpu_user_annotation")


def _check_devices(batches: dict[str, EventBatch]) -> dict[str, tuple[int, Any]]:
    """Drop GPU events whose device id does not fit the model's int32; (count, first value) per category.

    Why: the cast to int32 would fold device 2**32 into device 0, merging two timelines into a
    wrong busy/idle figure without a word. Booleans are not device ids either.
    """
    bad_devices: dict[str, tuple[int, Any]] = {}
    for cat in _DEVICE_CATS:
        batch = batches[cat]
        if not len(batch):
            continue
        pids = batch.field("pid")
        raw = pids if cat == "gpu_user_annotation" else values_or(batch.args(), "device", pids)
        device, valid = device_column(raw)
        if bool(valid.all()):
            batch.device = device
            continue
        bad = int((~valid).sum())
        bad_devices[cat] = (bad, raw[int(np.flatnonzero(~valid)[0])])
        batches[cat] = EventBatch(
            list(compress(batch.events, valid.tolist())),
            batch.start[valid],
            batch.end[valid],
            dropped=batch.dropped,
            device=device[valid],
            bad_device=bad,
        )
    return bad_devices


def _fill_kernels(
    path: Path,
    trace: Trace,
    kernels: list[Part],
    operators: Part,
    unusable_kernels: int,
    cpu_ops_as_kernels: bool,
) -> None:
    """Kernel table from GPU kernels, or from dominant CPU operators for CPU-only captures.

    ``operators``: the ``cpu_op`` range rows of the whole file; ``unusable_kernels``: kernel
    events dropped for their interval or device id.
    """
    if any(len(part) for part in kernels):
        trace.kernels = kernels_table(kernels, _comm_operator_ids(trace.ranges))
        if cpu_ops_as_kernels:
            trace.notes.append("cpu_ops_as_kernels ignored: the trace has GPU kernels")
        return
    if unusable_kernels:
        raise InputError(
            path,
            f"none of the {unusable_kernels} GPU kernel events is usable (ts/dur "
            "missing, non-numeric or out of range, or a device id that is not a 32-bit integer)",
        )
    if not cpu_ops_as_kernels:
        raise InputError(path, NO_GPU_KERNELS)
    if not len(operators):
        raise InputError(path, "neither GPU kernels nor CPU operators (cpu_op events) in the trace")
    trace.kernels = cpu_ops_as_kernels_table(operators)
    trace.device_kind = "cpu"
    trace.gpus = {0: GpuInfo(device=0, name="CPU (host operators)", kind="cpu")}
    trace.notes.append(
        f"CPU-only capture: {len(trace.kernels)} dominant CPU operators (of {len(operators)} cpu_op "
        "events: per host thread the outermost ops whose self time is at least half their "
        "duration, children dropped) stand in for kernels on pseudo device 0, stream = host thread"
    )


def _comm_operator_ids(ranges: pd.DataFrame) -> np.ndarray:
    """``External id`` of the ``record_param_comms`` operators (empty when none is recorded)."""
    if "external_id" not in ranges.columns:
        return np.empty(0, dtype=np.int64)
    ids = ranges["external_id"].to_numpy(np.int64)
    return np.unique(ids[ids >= 0])


def first_event_ns(batches: dict[str, EventBatch], others: list[Any], *, ts_in_ns: bool) -> int | None:
    """Where Perfetto puts time zero: the earliest event of the file, in ns (None: no timed event).

    That is the earliest start among the events the tables are built from (``batches``) and the
    ``ts`` of the other parsed events (``others``: the ``PyTorch Profiler`` span, overhead
    events, ...; metadata events, ``ph: "M"``, carry no time). The text slimming drops Python
    frames, CPU instant events and flow arrows before parsing; none of them starts before the
    profiler's own span that opens every recent capture (flows start at the events they link), so
    the minimum is the file's: checked on every trace in the shared data set against a full parse.
    """
    starts = [int(batch.start.min()) for batch in batches.values() if len(batch)]
    phases = values(others, "ph")
    stamps = values(list(compress(others, map(operator.ne, phases, repeat("M")))), "ts")
    ns, valid = exact_int_column(stamps) if ts_in_ns else us_to_ns(stamps)
    valid &= time_in_limits(ns)  # as the tables' times: differences must fit in int64
    if valid.any():
        starts.append(int(ns[valid].min()))
    return min(starts) if starts else None


def _gpus(top: dict[str, Any]) -> dict[int, GpuInfo]:
    """GpuInfo per ``deviceProperties`` entry (empty names become None)."""
    gpus: dict[int, GpuInfo] = {}
    props = top.get("deviceProperties")
    for prop in props if isinstance(props, list) else []:
        if not isinstance(prop, dict) or type(prop.get("id")) is not int or not 0 <= prop["id"] < 2**31:
            continue  # not a device id the kernel tables can hold (see _check_devices)
        major, minor = prop.get("computeMajor"), prop.get("computeMinor")
        gpus[prop["id"]] = GpuInfo(
            device=prop["id"],
            name=(short_name(prop["name"]) or None) if isinstance(prop.get("name"), str) else None,
            sm_count=_int_or_none(prop.get("numSms")),
            memory_bytes=_int_or_none(prop.get("totalGlobalMem")),
            compute_capability=f"{major}.{minor}"
            if _int_or_none(major) is not None and type(minor) is int and 0 <= minor < 100
            else None,
        )
    return gpus


def _complete_gpus(trace: Trace) -> None:
    """Every device that ran kernels gets a GpuInfo, named or not (and a note when unnamed)."""
    devices = sorted({int(d) for d in np.unique(trace.kernels["device"].to_numpy())})
    missing = [d for d in devices if d not in trace.gpus]
    models = {(g.name, g.sm_count, g.memory_bytes, g.compute_capability) for g in trace.gpus.values()}
    if missing and len(models) == 1:
        # ROCm numbers devices by HSA agent (CPU agents first), so kernels on "device 9" can go
        # with a single deviceProperties entry 0; on a homogeneous node the model is the same.
        name, sm_count, memory_bytes, capability = models.pop()
        trace.notes.append(
            f"device(s) {missing} have no deviceProperties entry; assumed to be the same model as "
            f"the {len(trace.gpus)} listed device(s) ({name or 'unnamed'}), all identical"
        )
        for device in missing:
            trace.gpus[device] = GpuInfo(device, name, sm_count, memory_bytes, capability)
    for device in missing:
        trace.gpus.setdefault(device, GpuInfo(device=device))
    unnamed = [d for d in devices if trace.gpus[d].name is None]
    if unnamed:
        trace.notes.append(
            f"the trace does not name GPU(s) {unnamed} (no deviceProperties entry or an empty "
            "name): pass the GPU model to get hardware peaks"
        )


def _int_or_none(value: Any) -> int | None:
    """A positive int64 count (SMs, bytes); anything else (bool, float, huge, <= 0) is unknown."""
    return value if type(value) is int and 0 < value < 2**63 else None


def _rank(top: dict[str, Any], path: Path) -> int | None:
    """``distributedInfo.rank``, else a rank in the file name (rank-3, rank3, _rank0, TP-2)."""
    info = top.get("distributedInfo")
    if isinstance(info, dict) and type(info.get("rank")) is int:
        return int(info["rank"])
    for pattern in _RANK_IN_NAME:
        match = pattern.search(path.name)
        if match:
            return int(match.group(1))
    return None


def _metadata(top: dict[str, Any]) -> dict[str, str]:
    """Every header field as a string, nested dicts flattened to ``key.sub`` / ``key.sub.sub``.

    Headers carry provenance worth keeping: library versions, ``distributedInfo`` (rank,
    world_size), and capture blocks scripts add, such as the demo's ``infersight_capture``
    (device, torch/transformers versions, model config). Values that are lists, or dicts nested
    more than :data:`METADATA_FLATTEN_LEVELS` deep, are kept as compact JSON; nulls are skipped;
    every value is capped at :data:`METADATA_VALUE_CAP` characters.
    """
    meta: dict[str, str] = {}
    for key, value in top.items():
        if key not in _NOT_METADATA:
            _flatten_into(meta, str(key), value, levels_left=METADATA_FLATTEN_LEVELS)
    return meta


def _flatten_into(meta: dict[str, str], key: str, value: Any, *, levels_left: int) -> None:
    if value is None:
        return
    if isinstance(value, dict) and levels_left > 0:
        for sub, inner in value.items():
            _flatten_into(meta, f"{key}.{sub}", inner, levels_left=levels_left - 1)
        return
    text = str(value) if _is_scalar(value) else orjson.dumps(value).decode()
    meta[key] = text if len(text) <= METADATA_VALUE_CAP else text[: METADATA_VALUE_CAP - 1] + "…"


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def correlation_notes(kernels: pd.DataFrame, api: pd.DataFrame) -> list[str]:
    """Say how kernels link to their launching API call (by correlation id).

    Kernels queued before the host side of the capture started have no launch in the trace;
    graph-launched kernels all carry their ``cudaGraphLaunch``'s correlation, and Kineto records
    no graph id, so that launch is the only way to tell them apart from eager kernels.
    """
    notes: list[str] = []
    if not len(kernels):
        return notes
    corr = kernels["correlation"].to_numpy()
    api_corr = api["correlation"].to_numpy()
    # hash lookups: linear whatever the id range (np.isin sorts once ids span a wide range)
    launched = pd.Series(corr).isin(api_corr).to_numpy()
    unlaunched = int((~launched).sum())
    if unlaunched > UNLAUNCHED_NOTE_SHARE * len(corr):
        early = int(((~launched) & (corr < (api_corr.min() if len(api_corr) else 0))).sum())
        notes.append(
            f"{unlaunched} of {len(corr)} kernels ({unlaunched / len(corr):.1%}) have no launching "
            f"runtime/driver call in the trace; {early} of them have correlation ids below the "
            "first recorded call (launched before the host-side capture began)"
        )
    graph_corr = api["correlation"].to_numpy()[api["name"].isin(GRAPH_LAUNCH_APIS).to_numpy()]
    by_graph = int(pd.Series(corr).isin(graph_corr).sum()) if len(graph_corr) else 0
    if by_graph:
        notes.append(
            f"{by_graph} of {len(corr)} kernels ({by_graph / len(corr):.1%}) were launched by "
            f"{len(graph_corr)} graph launches (cudaGraphLaunch/hipGraphLaunch); Kineto records no "
            "graph id (graph_id = -1): join on correlation to find the launch"
        )
    return notes
