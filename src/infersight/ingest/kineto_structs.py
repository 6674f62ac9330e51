"""Kineto events decoded by msgspec into typed structs: only the fields the readers use.

Why: a trace is mostly text no table reads (Python stack frames, operator args with their input
types and strides). orjson builds a dict and a string for every field of every event, so the
reader used to cut that text out in Python first (:mod:`infersight.ingest.kineto_text`), which
cost more than the parse. msgspec decoding ``list[Event]`` builds only the declared fields and
skips the rest while it validates it (bench/README.md, ``bench_stream.py``: about 3x less parse
time than orjson on the same chunk, and no slimming pass).

What is declared mirrors what the slimmed text kept for the column builders:

* the event fields ``ph``, ``cat``, ``name``, ``pid``, ``tid``, ``ts``, ``dur``, ``args``, each
  with the default the dict readers use for an absent key (``name``: "", the others None);
* the ``args`` keys the tables read (:class:`Args`), with the reader's default, or
  :data:`ABSENT` where the default depends on the reader (``device`` falls back to ``pid``);
* the keys only collective rows read (a few hundred per trace), and ``Input Dims``, kept as raw
  JSON text (:class:`msgspec.Raw`: no objects built): :func:`as_dicts` turns the few collective
  rows into the dicts :mod:`infersight.ingest.kineto_args` reads, with orjson as before.

:func:`decode` gives None where msgspec would not read the text as orjson reads it (the caller
then parses that chunk the old way, slimmed text and orjson, which also gives the old errors): a
value the structs cannot hold (``args`` that is not an object or is null, an event that is not an
object, a number beyond float64 in a field read here), and invalid UTF-8 anywhere (orjson refuses
it, msgspec only where it builds a string). Two differences are kept on purpose, both in fields no
table reads: an integer beyond 64 bits is skipped (orjson made it a float nobody read), and a
number beyond float64 (``1e400``) is skipped where orjson refused the whole text; the slimmed
read already skipped both in the events and args it cut, now they are skipped wherever they are
(scanning every chunk for them cost ~10% of the read).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

import msgspec
import orjson

from infersight.ingest.kineto_text import UNUSED_EVENTS

ABSENT: Any = msgspec.UNSET  # an args key not in the event (its default depends on the reader)
NO_RAW = msgspec.Raw()  # an args key kept as raw JSON that is not in the event


class Args(msgspec.Struct, gc=False):
    """The ``args`` keys any table reads (JSON names in ``name=``)."""

    device: Any = ABSENT
    stream: Any = ABSENT
    correlation: Any = -1
    grid: Any = None
    block: Any = None
    registers: Any = msgspec.field(default=0, name="registers per thread")
    shared_memory: Any = msgspec.field(default=0, name="shared memory")
    bytes: Any = 0
    kind: Any = None
    external_id: Any = msgspec.field(default=-1, name="External id")
    input_dims: msgspec.Raw = msgspec.field(default=NO_RAW, name="Input Dims")
    input_type: msgspec.Raw = msgspec.field(default=NO_RAW, name="Input type")
    collective: msgspec.Raw = msgspec.field(default=NO_RAW, name="Collective name")
    dtype: msgspec.Raw = NO_RAW
    in_nelems: msgspec.Raw = msgspec.field(default=NO_RAW, name="In msg nelems")
    out_nelems: msgspec.Raw = msgspec.field(default=NO_RAW, name="Out msg nelems")
    group_size: msgspec.Raw = msgspec.field(default=NO_RAW, name="Group size")
    group_ranks: msgspec.Raw = msgspec.field(default=NO_RAW, name="Process Group Ranks")


class Event(msgspec.Struct, gc=False):
    """One trace event: the fields the tables read, absent ones at the dict readers' default."""

    ph: Any = None
    cat: Any = None
    name: Any = ""
    pid: Any = None
    tid: Any = None
    ts: Any = None
    dur: Any = None
    args: Args = msgspec.field(default_factory=Args)  # "args": null is not read here (see decode)


EMPTY_ARGS = Args()  # the defaults of every key
_PH, _CAT = attrgetter("ph"), attrgetter("cat")
_DECODER = msgspec.json.Decoder(list[Event])
_FIELDS = Args.__struct_fields__
_ENCODED = Args.__struct_encode_fields__
ATTRIBUTE = {key: attr for attr, key in zip(_FIELDS, _ENCODED, strict=True)}  # JSON key -> attribute
_RAW_KEYS = tuple(
    (attr, key)
    for attr, key in zip(_FIELDS, _ENCODED, strict=True)
    if isinstance(getattr(EMPTY_ARGS, attr), msgspec.Raw)
)
# attributes whose default is ABSENT (the readers' default differs: see kineto_columns.values)
MAY_BE_ABSENT = frozenset(attr for attr in _FIELDS if getattr(EMPTY_ARGS, attr) is ABSENT)
_PLAIN_KEYS = tuple(
    (attr, key) for attr, key in zip(_FIELDS, _ENCODED, strict=True) if (attr, key) not in _RAW_KEYS
)


def decode(text: bytes | bytearray) -> list[Event] | None:
    """The events of one JSON array of events, or None when orjson might read it differently."""
    if not text.isascii():
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        return _DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None


def is_struct_list(rows: Sequence[Any]) -> bool:
    """True when ``rows`` are decoded structs (a chunk is all structs or all dicts)."""
    return bool(rows) and isinstance(rows[0], Event | Args)


def as_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """A few ``args`` (structs or dicts) as dicts of the keys they hold; raw values parsed by orjson."""
    if not is_struct_list(rows):
        return list(rows)
    return [_as_dict(row) for row in rows]


def _as_dict(args: Args) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key in _PLAIN_KEYS:
        value = getattr(args, attr)
        if value is not ABSENT:
            out[key] = value
    for attr, key in _RAW_KEYS:
        raw = getattr(args, attr)
        if len(raw):
            out[key] = orjson.loads(bytes(raw))
    return out


def has_raw(args: list[Args], attr: str) -> list[bool]:
    """Whether each ``args`` holds the raw-kept key ``attr`` (a JSON null counts as held)."""
    return list(map(bool, map(len, map(attrgetter(attr), args))))


def raw_texts(args: list[Args], attr: str) -> list[bytes]:
    """The raw JSON text of a raw-kept key per row (b"" where absent)."""
    return list(map(bytes, map(attrgetter(attr), args)))


def without_unused(events: list[Event]) -> list[Event]:
    """``events`` without those the text slimming drops (:data:`kineto_text.UNUSED_EVENTS`):
    Python frames, CPU instant events, flow arrows. Only the earliest time of the *other* events
    is read (``first_event_ns``), so it stays what the slimmed read gave."""
    keep = [  # a phase or category that is no string (a JSON list, say) matches no unused kind
        type(p) is not str
        or (p not in _UNUSED_PHASES and (type(c) is not str or (p, c) not in _UNUSED_PAIRS))
        for p, c in zip(map(_PH, events), map(_CAT, events), strict=True)
    ]
    return list(compress(events, keep))


_UNUSED_PHASES = frozenset(phase for phase, category in UNUSED_EVENTS if not category)  # any category
_UNUSED_PAIRS = frozenset(pair for pair in UNUSED_EVENTS if pair[1])
