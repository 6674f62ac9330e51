"""Read a big Kineto trace in bounded chunks: decompress, cut at event boundaries, parse, keep columns.

Why: a 2M-event trace is ~600 MB of JSON. Parsed whole, the decompressed text, its slimmed copy
and one dict per event were alive at once (3.4 GB for 620 MB of JSON). Here the text goes through
in chunks of :data:`CHUNK_BYTES`: each chunk is cut at the last event-start marker of its layout
(:mod:`infersight.ingest.kineto_text`: a marker can only be structure, never text inside a
string), decoded as one JSON array of typed structs (:mod:`infersight.ingest.kineto_structs`;
where that cannot read it as orjson would: slimmed and parsed by orjson), and turned into columns
by the caller's ``to_chunk`` before the next chunk is read; the text and the events are dropped.
A text below the streaming size is read the same way, as one chunk, in this process
(:func:`read_whole`). What stays is the
columns of the kept events, so the peak is those columns plus a fixed chunk budget.

Decompression runs in a second thread (zlib releases the GIL), :data:`PREFETCH_PIECES` pieces
ahead of the parser, so it overlaps with parsing on a second core.

The header (everything before the first event marker, with the events it holds) and the last
event with the rest of the document are parsed together at the end, as one small document with
a marker event between them, so the top-level fields and the edge events are read exactly as a
full parse reads them. Anything unexpected (no known layout, a part that does not end like an
event, a chunk or the edge document that does not parse, a ``ts`` written in a form the ns
rewrite does not handle) makes :func:`read` return None: the caller then reads the file whole,
the way it always did, which also gives the exact error for a corrupt or truncated file.
"""

from __future__ import annotations

import multiprocessing
import operator
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import compress, repeat
from typing import Any, Generic, TypeVar

import orjson

from infersight.errors import InputError
from infersight.executors.processes import process_context, worker_count
from infersight.heap import release_freed_memory
from infersight.ingest import kineto_structs, kineto_text
from infersight.ingest.kineto_text import Layout

CHUNK_BYTES = 16 << 20  # decompressed text parsed at a time (see bench/README.md)
STREAM_MIN_BYTES = 64 << 20  # smaller texts are read whole (a 1-2 MB gzip trace: no workers, no chunking)
MAX_CARRY_CHUNKS = 8  # a stretch of this many chunks without an event marker: not this layout
MAX_CHUNK_WORKERS = 4  # worker processes for chunks (each holds one chunk's events while it works)
PREFETCH_PIECES = 4  # decompressed pieces (<= 4 MiB each) buffered ahead of the parser
SPLIT_CATEGORY = "__infersight_split__"  # the marker event between header and last event

ChunkT = TypeVar("ChunkT")


@dataclass
class Streamed(Generic[ChunkT]):
    """The file read in chunks: their columns in file order, and the top-level JSON object."""

    chunks: list[ChunkT]
    top: dict[str, Any]


def read(
    pieces: Iterator[bytes],
    to_chunk: Callable[[list[Any], bool], ChunkT],
    on_chunk: Callable[[], None] | None = None,
) -> bytearray | Streamed[ChunkT] | None:
    """Read the decompressed ``pieces`` of one trace.

    Returns the whole text when it is shorter than :data:`STREAM_MIN_BYTES` (the caller parses it
    whole), the chunks when the text was streamed, or None when the caller must read the file
    again and parse it whole (see the module docstring). ``on_chunk`` is called after each chunk.
    ``to_chunk`` must pickle (a module-level function or a partial of one): with more than one
    core, chunks after the first are turned into columns in worker processes (:func:`chunk_workers`).
    """
    head = bytearray()
    for piece in pieces:  # read here, before any thread starts: the workers can be forked
        head += piece
        if len(head) >= STREAM_MIN_BYTES:
            break
    else:
        return head
    layout = kineto_text.detect_layout(head)
    if layout is None:
        return None
    workers = chunk_workers()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) if workers > 1 else None
    stream = _prefetched(pieces, PREFETCH_PIECES)
    try:
        return _Chunker(layout, to_chunk, on_chunk or _nothing, pool, workers).run(head, stream)
    finally:
        stream.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def read_whole(
    text: bytes | bytearray, to_chunk: Callable[[list[Any], bool], ChunkT]
) -> Streamed[ChunkT] | None:
    """A text below :data:`STREAM_MIN_BYTES`, in this process: its events between the first and
    the last marker as one chunk, the edges as in a streamed read; None (the caller parses the
    text whole) where the layout is unknown or a streamed read would give up.

    Why: the chunk path decodes events as structs (:mod:`kineto_structs`), which skips the text
    slimming and most of the parse. Texts of fewer than ``MIN_EVENTS_TO_SLIM`` events are left to
    the whole read, which does not slim them either.
    """
    layout = kineto_text.detect_layout(text)
    if layout is None:
        return None
    sep = layout.event_start
    if not _has_markers(text, sep, kineto_text.MIN_EVENTS_TO_SLIM - 1):
        return None
    first, last = text.find(sep), text.rfind(sep)
    chunker = _Chunker(layout, to_chunk, _nothing)
    view = memoryview(text)
    try:
        if last > first:
            chunker._body(bytes(view[first:last]))
        return chunker._edges(bytes(view[:first]), bytes(view[last + len(sep) :]))
    except _Failed:
        return None
    finally:
        view.release()


def _has_markers(text: bytes | bytearray, sep: bytes, count: int) -> bool:
    """Whether ``sep`` occurs at least ``count`` times (found one by one: no scan of the whole text)."""
    at = -1
    for _ in range(count):
        at = text.find(sep, at + 1)
        if at < 0:
            return False
    return True


def chunk_workers() -> int:
    """Worker processes for chunks: cores (or ``INFERSIGHT_WORKERS``), at most
    :data:`MAX_CHUNK_WORKERS`; 1 (no pool) inside a worker process."""
    if multiprocessing.parent_process() is not None:
        return 1
    return worker_count(MAX_CHUNK_WORKERS)


def _nothing() -> None:
    return None


class _Failed(Exception):
    """The streamed read cannot go on: the caller reads the file whole."""


class _Chunker(Generic[ChunkT]):
    """Cuts the text at event markers and turns every chunk of whole events into columns."""

    def __init__(
        self,
        layout: Layout,
        to_chunk: Callable[[list[Any], bool], ChunkT],
        on_chunk: Callable[[], None],
        pool: ProcessPoolExecutor | None = None,
        workers: int = 1,
    ):
        self.layout = layout
        self.sep = layout.event_start
        self.to_chunk = to_chunk
        self.on_chunk = on_chunk
        self.pool = pool
        self.workers = workers
        self.pending: deque[Future[Any]] = deque()
        self.ts_in_ns: bool | None = None  # decided on the first chunk, as a whole read decides it
        self.chunks: list[ChunkT] = []

    def run(self, buffer: bytearray, stream: Iterator[bytes]) -> Streamed[ChunkT] | None:
        try:
            return self._run(buffer, stream)
        except _Failed:
            return None

    def _run(self, buffer: bytearray, stream: Iterator[bytes]) -> Streamed[ChunkT]:
        header: bytes | None = None
        searched = 0  # the buffer holds no marker after this offset
        for piece in stream:
            buffer += piece
            if len(buffer) < CHUNK_BYTES:
                continue
            cut = buffer.rfind(self.sep, searched)
            if cut <= 0:
                if len(buffer) > MAX_CARRY_CHUNKS * CHUNK_BYTES:
                    raise _Failed
                searched = max(0, len(buffer) - len(self.sep))
                continue
            if header is None:
                header = bytes(buffer[: buffer.find(self.sep)])
                del buffer[: len(header)]
                cut -= len(header)
            with memoryview(buffer) as view:  # one copy (a slice of a bytearray copies too)
                body = bytes(view[:cut])
            self._body(body)
            del body
            del buffer[:cut]  # what is left starts with the marker of the next event
            searched = 0
        parts = buffer.split(self.sep)
        del buffer[:]
        if header is None:
            header = bytes(parts[0])
        elif parts[0]:
            raise _Failed
        if len(parts) < 2:
            raise _Failed
        last = bytes(parts[-1])
        self._body(self.sep + self.sep.join(parts[1:-1]) if len(parts) > 2 else b"")
        del parts
        self._collect(0)
        return self._edges(header, last)

    def _body(self, body: bytes) -> None:
        """Whole events, each after its marker: into columns, here or in a worker."""
        if not body:
            return
        if self.pool is None or self.ts_in_ns is None:  # the first chunk decides ts_in_ns here
            events = self._structs(body)
            if events is not None:
                self.chunks.append(self.to_chunk(events, bool(self.ts_in_ns)))
                self.on_chunk()
                return
            text = chunk_text(body, self.layout)
            del body
            if text is None:
                raise _Failed
            self.chunks.append(self.to_chunk(self._parse(text), bool(self.ts_in_ns)))
            self.on_chunk()
            return
        future = self.pool.submit(_chunk_in_worker, self.to_chunk, self.layout.name, self.ts_in_ns, body)
        self.pending.append(future)
        self._collect(self.workers)  # at most one chunk in flight per worker

    def _collect(self, keep: int) -> None:
        """Take finished chunks (in file order) until at most ``keep`` are in flight."""
        while len(self.pending) > keep:
            outcome = self.pending.popleft().result()
            if outcome is None:
                raise _Failed
            if isinstance(outcome, _WorkerError):
                raise InputError(outcome.source, outcome.problem)
            self.chunks.append(outcome)
            self.on_chunk()

    def _structs(self, body: bytes) -> list[kineto_structs.Event] | None:
        """The chunk decoded as structs (deciding ``ts_in_ns`` on the first chunk); None: parse
        it the slower way (:func:`chunk_text` and orjson), which reads anything this does not."""
        text = struct_text(body, self.layout)
        if text is None:
            return None
        ts_in_ns = self.ts_in_ns
        if ts_in_ns is None:
            ts_in_ns = kineto_text.needs_exact_ns(text)
        events = decode_structs(text, ts_in_ns)
        if events is not None:
            self.ts_in_ns = ts_in_ns
        return events

    def _parse(self, text: bytes | bytearray) -> Any:
        """orjson on one chunk, ``ts`` rewritten to integer ns where the trace needs it."""
        if self.ts_in_ns is None:
            text, self.ts_in_ns = kineto_text.exact_ns_timestamps(text)
            ts_done = True
        else:
            ts_done = False
        events = parse_chunk(text, bool(self.ts_in_ns) and not ts_done)
        if events is None:
            raise _Failed
        return events

    def _edges(self, header: bytes, last: bytes) -> Streamed[ChunkT]:
        """The header's events first and the last event(s) last; the top-level fields."""
        split = b'M"%s"cat"%s"%s"%s' % (
            self.layout.item,
            self.layout.key,
            SPLIT_CATEGORY.encode(),
            self.layout.event_end,
        )
        document = self._parse(header + self.sep + split + self.sep + last)
        if isinstance(document, list):
            events, top = document, {}
        elif isinstance(document, dict) and isinstance(document.get("traceEvents"), list):
            events, top = document["traceEvents"], document
        else:
            raise _Failed
        at = next(
            (i for i, e in enumerate(events) if type(e) is dict and e.get("cat") == SPLIT_CATEGORY), None
        )
        if at is None:
            raise _Failed
        ts_in_ns = bool(self.ts_in_ns)
        first, final = self.to_chunk(events[:at], ts_in_ns), self.to_chunk(events[at + 1 :], ts_in_ns)
        top = {key: value for key, value in top.items() if key != "traceEvents"}
        return Streamed([first, *self.chunks, final], top)


def struct_text(body: bytes, layout: Layout) -> bytearray | None:
    """Events after their markers (``body`` starts with one) as one JSON array, or None when an
    event does not end the way the layout ends one (the test of :func:`chunk_text`, by counting:
    every marker but the first follows an event end, and so does the body).

    Python stack frames (``with_stack=True``: most events of a vLLM/SGLang capture, never read)
    are cut out first, by the event-header test the text slimming uses: decoding them into
    structs cost more than the cut, and their memory. Every other event is kept unchanged.
    """
    sep, end = layout.event_start, layout.event_end
    if not body.endswith(end) or body.count(end + sep) != body.count(sep) - 1:
        return None
    frames = layout.headers(kineto_text.PYTHON_FRAMES)
    if frames[0] in body:
        parts = body.split(sep)
        body = sep.join(compress(parts, map(operator.not_, map(bytes.startswith, parts, repeat(frames)))))
        del parts
    text = bytearray(b"[")
    with memoryview(body) as view:
        text += view[sep.index(b"{") :]
    if text.endswith(b","):
        del text[-1]
    text += b"]"
    return text


def decode_structs(text: bytearray, ts_in_ns: bool) -> list[kineto_structs.Event] | None:
    """:func:`kineto_structs.decode` of ``text`` (``ts`` rewritten to integer ns first when
    ``ts_in_ns``); None when it fails (the caller parses the chunk with orjson)."""
    if ts_in_ns:
        rewritten = kineto_text.ns_rewrite(text)
        if rewritten is None:
            return None
        return kineto_structs.decode(rewritten)
    return kineto_structs.decode(text)


def chunk_text(body: bytes, layout: Layout) -> bytearray | None:
    """Events after their markers (``body`` starts with one) as one slimmed JSON array, or None
    when a part does not end the way the layout ends an event."""
    parts = body.split(layout.event_start)
    if parts[0]:
        return None
    kept = kineto_text.slim_parts(parts[1:], layout)
    del parts
    if kept is None:
        return None
    if not kept:  # every event of the chunk is one we never read
        return bytearray(b"[]")
    sep = layout.event_start
    text = bytearray(b"[")
    text += sep[sep.index(b"{") :]
    text += sep.join(kept)
    del kept
    if text.endswith(b","):
        del text[-1]
    text += b"]"
    return text


def parse_chunk(text: bytes | bytearray, ts_in_ns: bool) -> Any:
    """orjson on ``text`` (``ts`` rewritten to integer ns first when ``ts_in_ns``); None if it fails."""
    if ts_in_ns:
        rewritten = kineto_text.ns_rewrite(text)
        if rewritten is None:
            return None
        text = rewritten
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


@dataclass
class _WorkerError:
    """An :class:`InputError` raised in a worker (it does not pickle): raised again here."""

    source: str | None
    problem: str


def _chunk_in_worker(
    to_chunk: Callable[[list[Any], bool], ChunkT], layout_name: str, ts_in_ns: bool, body: bytes
) -> ChunkT | _WorkerError | None:
    """One chunk's columns, in a worker process; None: the caller reads the file whole."""
    layout = next(candidate for candidate in kineto_text.LAYOUTS if candidate.name == layout_name)
    fast = struct_text(body, layout)
    events: Any = None if fast is None else decode_structs(fast, ts_in_ns)
    del fast
    if events is None:
        text = chunk_text(body, layout)
        del body
        if text is None:
            return None
        events = parse_chunk(text, ts_in_ns)
        del text
        if events is None:
            return None
    try:
        chunk = to_chunk(events, ts_in_ns)
    except InputError as exc:
        return _WorkerError(exc.source, exc.problem)
    del events
    release_freed_memory()
    return chunk


_END = object()


def _prefetched(pieces: Iterator[bytes], depth: int) -> Generator[bytes, None, None]:
    """``pieces`` produced by a second thread, at most ``depth`` ahead; its errors re-raised here.

    Closing the returned generator stops the thread (it is joined before the caller's file closes).
    """
    slots: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for piece in pieces:
                if not put(piece):
                    return
            put(_END)
        except BaseException as exc:  # handed to the reading thread, raised there
            put(exc)

    thread = threading.Thread(target=produce, name="infersight-decompress", daemon=True)
    thread.start()
    return _drain(slots, stop, thread)


def _drain(
    slots: queue.Queue[Any], stop: threading.Event, thread: threading.Thread
) -> Generator[bytes, None, None]:
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
