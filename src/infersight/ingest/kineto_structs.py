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

:func:`decode` gives None whenever msgspec would not read the text exactly as orjson reads it
(the caller then parses the chunk the old way): a value msgspec rejects (an args that is not an
object, a number beyond float64), invalid UTF-8 anywhere (orjson fails on it, msgspec only where
it builds a string), integers beyond 64 bits (orjson gives floats, msgspec ints) and exponents
of three digits (orjson refuses 1e400 even in a field it does not keep).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

import msgspec
import orjson

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
    args: Args | None = None


EMPTY_ARGS = Args()
_DECODER = msgspec.json.Decoder(list[Event])
_FIELDS = Args.__struct_fields__
_ENCODED = Args.__struct_encode_fields__
ATTRIBUTE = {key: attr for attr, key in zip(_FIELDS, _ENCODED, strict=True)}  # JSON key -> attribute
_RAW_KEYS = tuple(
    (attr, key)
    for attr, key in zip(_FIELDS, _ENCODED, strict=True)
    if isinstance(getattr(EMPTY_ARGS, attr), msgspec.Raw)
)
_PLAIN_KEYS = tuple(
    (attr, key) for attr, key in zip(_FIELDS, _ENCODED, strict=True) if (attr, key) not in _RAW_KEYS
)
# Digits and exponent letters folded to one byte each, so substring searches find the numbers
# that may overflow float64 (see _may_overflow).
_FOLD = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_DIGITS = b"0" * 200  # an integer part this long (beyond 1e199) may overflow with its exponent
_BIG_EXPONENTS = (b"e000", b"e+000")  # an exponent of 3+ digits (1e400)
_DIGITS = frozenset(b"0123456789.")
_BEFORE_NUMBER = frozenset(b" \t\r\n:,[")
_EXPONENT_SIGN = frozenset(b"+-")


def decode(text: bytes | bytearray) -> list[Event] | None:
    """The events of one JSON array of events, or None when orjson might read it differently."""
    if not text.isascii():
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if _may_overflow(text):
        return None
    try:
        return _DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None


def _may_overflow(text: bytes | bytearray) -> bool:
    """True when some JSON number of ``text`` may be beyond float64 (1e400): orjson refuses the
    whole text, msgspec only when the number is in a field it keeps.

    Only an exponent of three digits or more, or an integer part of 200+ digits, can get there;
    each exponent found is checked by Python's float (hex addresses in names, ``0x7fda0e810200``,
    hold such digit runs too: they are not numbers, nothing precedes them as one)."""
    folded = text.translate(_FOLD)
    if _LONG_DIGITS in folded:
        return True
    for pattern in _BIG_EXPONENTS:
        at = folded.find(pattern)
        while at >= 0:
            if _overflows(text, at):
                return True
            at = folded.find(pattern, at + 1)
    return False


def _overflows(text: bytes | bytearray, at: int) -> bool:
    """Whether the number whose exponent starts at ``at`` (the ``e``) is infinite as a float."""
    start = at
    while start > 0 and text[start - 1] in _DIGITS:
        start -= 1
    if start > 0 and text[start - 1] == ord("-"):
        start -= 1
    if start == at or (start > 0 and text[start - 1] not in _BEFORE_NUMBER):
        return False  # not a number: letters or a quote before the digits
    end = at + 1
    if end < len(text) and text[end] in _EXPONENT_SIGN:
        end += 1
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    try:
        return math.isinf(float(bytes(text[start:end])))
    except ValueError:
        return True  # not a number Python reads: let orjson judge it


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
    return [len(raw) > 0 for raw in map(attrgetter(attr), args)]


def raw_texts(args: list[Args], attr: str) -> list[bytes | None]:
    """The raw JSON text of a raw-kept key per row (None where absent)."""
    return [bytes(raw) if len(raw) else None for raw in map(attrgetter(attr), args)]


def without_unused(events: list[Event]) -> list[Event]:
    """``events`` without those the text slimming drops (:data:`kineto_text` unused events):
    Python frames, CPU instant events, flow arrows. Only the earliest time of the *other* events
    is read (``first_event_ns``), so it stays what the slimmed read gave."""
    keep = [
        not (
            (e.ph == "X" and e.cat == "python_function")
            or (e.ph == "i" and e.cat == "cpu_instant_event")
            or e.ph in ("f", "s")
        )
        for e in events
    ]
    return list(compress(events, keep))
