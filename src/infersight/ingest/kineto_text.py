"""Text-level passes over Kineto JSON before it is parsed.

Parsing is most of the cost of reading a trace, and most of what a trace holds is never read:
``python_function`` frames (``with_stack=True``, the norm for vLLM/SGLang captures), flow arrows,
and the ``args`` of CPU operators (input shapes and types as nested lists). libkineto writes
every event in a fixed layout, one event per block::

      {
        "ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1,
        "ts": 3676599926367.377, "dur": 27.561,
        "args": {
          ...
        }
      },

and a trace re-saved by Python's ``json.dump`` (or minified) keeps the key order on one line:
``..., {"ph": "X", "cat": "cpu_op", ..., "dur": 27.561, "args": {...}}, {"ph": ...``.

Why cutting the text is safe: inside a JSON string every ``"`` is escaped, so a marker such as
``{"ph": "`` (an unescaped quote right after a brace) can only be structure, never text; and
the native layout's newlines cannot occur inside strings at all. :func:`slim_text` splits the
event list at the event-start marker of the layout it recognises, drops whole events whose
header names a category we never read, and cuts the trailing ``args`` of range events (only
after their ``dur``). Anything unexpected leaves the text to the full parse, and the caller
falls back to the full parse if the slimmed text does not parse.

Two kinds of operator args are kept, because analyses read them (see the model's optional
columns): ``record_param_comms`` operators keep all their args (collective sizes; a few per
step), and an operator's ``"Input Dims"`` (``record_shapes=True``) survives the cut as a JSON
*string* holding its text, ``"args": {"Input Dims": "[[32, 4096], []]"}``: the value holds only
digits, brackets, commas and spaces, so quoting it is safe, and orjson then builds one short
string per operator instead of nested lists.

:func:`exact_ns_timestamps` keeps ns precision of epoch-based µs timestamps (see its docstring).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from itertools import compress, islice, repeat
from typing import Any

MIN_EVENTS_TO_SLIM = 1000  # below this the full parse costs nothing worth saving
_PROBE_BYTES = 1 << 20


@dataclass(frozen=True)
class Layout:
    """How one writer lays out the event list: the markers that bound events and ``args``."""

    name: str
    event_start: bytes  # separator before every event but the first, ending in '"ph": "'
    event_end: bytes  # how every event but the last ends, before the next event_start
    args_start: bytes  # the event's own "args" key, always its last field
    item: bytes  # separator between fields
    key: bytes  # separator between key and value

    def headers(self, *phase_and_category: tuple[str, str]) -> tuple[bytes, ...]:
        """Event-header prefixes (after '"ph": "') for (phase, category) pairs; "" category: any."""
        out = []
        for phase, category in phase_and_category:
            if category:
                out.append(b'%s"%s"cat"%s"%s"' % (phase.encode(), self.item, self.key, category.encode()))
            else:  # flows: "ph": "f", "id": ...
                out.append(b'%s"%s"id"' % (phase.encode(), self.item))
        return tuple(out)

    def named(self, phase: str, category: str, name: str) -> bytes:
        """Event-header prefix of one (phase, category, name): writers put ``name`` after ``cat``."""
        return b'%s%s"name"%s"%s"' % (self.headers((phase, category))[0], self.item, self.key, name.encode())


LAYOUTS = (
    Layout("libkineto", b'\n  {\n    "ph": "', b"\n  },", b',\n    "args": {', b", ", b": "),
    Layout("json.dump", b', {"ph": "', b"}", b', "args": {', b", ", b": "),
    Layout("minified", b',{"ph":"', b"}", b',"args":{', b",", b":"),
)
PYTHON_FRAMES = ("X", "python_function")  # (phase, category) of Python stack frames
# (phase, category) of the events no table reads ("" category: any), cut from the text before
# parsing; the struct read drops the same events after decoding (kineto_structs.without_unused)
UNUSED_EVENTS = (PYTHON_FRAMES, ("i", "cpu_instant_event"), ("f", ""), ("s", ""))
_ARGS_UNUSED_EVENTS = (("X", "cpu_op"), ("X", "user_annotation"), ("X", "gpu_user_annotation"))
ARGS_KEPT_OPERATOR = "record_param_comms"  # its args carry collective sizes: kept whole
INPUT_DIMS_KEY = "Input Dims"
# An "Input Dims" value as written: nested lists of integers, nothing that needs JSON escaping.
DIMS_VALUE = re.compile(rb"[\[\]0-9, \-]*")


def slim_text(raw: bytes | bytearray) -> bytes | None:
    """The trace text without unused events and range ``args``; None if no known layout fits."""
    for layout in LAYOUTS:
        if layout.event_start in raw[:_PROBE_BYTES]:
            slim = _slim(raw, layout)
            if slim is not None:
                return slim
    return None


def _slim(raw: bytes | bytearray, layout: Layout) -> bytes | None:
    # a gunzipped trace is a bytearray (see kineto._gunzip): its parts are too
    parts: list[Any] = raw.split(layout.event_start)
    if len(parts) < MIN_EVENTS_TO_SLIM:
        return None
    kept = slim_parts(
        parts[1:-1], layout
    )  # parts[0]: header (+ first event); parts[-1]: last event + the rest
    if kept is None:
        return None
    return layout.event_start.join([parts[0], *kept, parts[-1]])


def slim_parts(middle: list[Any], layout: Layout) -> list[Any] | None:
    """Whole events (text after each ``event_start``) without unused events and range ``args``.

    None when some part does not end the way the layout ends an event (not this layout).
    """
    if not middle:
        return []
    kind: Any = type(middle[0])
    if not all(map(kind.endswith, middle, repeat(layout.event_end))):
        return None
    unused = map(kind.startswith, middle, repeat(layout.headers(*UNUSED_EVENTS)))
    kept = list(compress(middle, map(operator.not_, unused)))
    args_unused = map(kind.startswith, kept, repeat(layout.headers(*_ARGS_UNUSED_EVENTS)))
    args_kept = layout.named("X", "cpu_op", ARGS_KEPT_OPERATOR)
    dims_key = b'"%s"%s' % (INPUT_DIMS_KEY.encode(), layout.key)
    for i in compress(range(len(kept)), args_unused):
        if not kept[i].startswith(args_kept):
            kept[i] = _without_args(kept[i], layout, dims_key)
    return kept


def detect_layout(probe: bytes | bytearray) -> Layout | None:
    """The first layout whose event-start marker occurs in ``probe`` (the text's first MiB)."""
    for layout in LAYOUTS:
        if layout.event_start in probe[:_PROBE_BYTES]:
            return layout
    return None


def _without_args(event: bytes | bytearray, layout: Layout, dims_key: bytes) -> bytes | bytearray:
    """One event with its trailing ``args`` object cut off (kept if ``dur`` does not precede it),
    all but its ``"Input Dims"``, which stays as a string of its text."""
    cut = event.find(layout.args_start)
    if cut < 0 or event.find(b'"dur"', 0, cut) < 0:
        return event
    at = event.find(dims_key, cut)
    if at < 0:
        return event[:cut] + layout.event_end
    match = DIMS_VALUE.match(event, at + len(dims_key))
    dims = match.group(0).rstrip(b", ") if match else b""
    if not dims.startswith(b"[") or not dims.endswith(b"]"):
        return event[:cut] + layout.event_end
    return b'%s%s%s"%s"}%s' % (event[:cut], layout.args_start, dims_key, dims, layout.event_end)


# At or above 2**43 µs (~8.8e12, i.e. epoch-based timestamps) float64's step exceeds 1 ns and
# round(ts * 1000) is no longer exact. Writers are consistent, so a few ts values tell.
_TS_VALUE = re.compile(rb'"ts"\s*:\s*-?(\d+)(\.\d)?')
FLOAT_EXACT_NS_LIMIT_US = 2**43
_TS_SAMPLE = 64
_TS_INT = re.compile(rb'("ts"\s*:\s*-?\d+)(?=[^\d.eE])')
_TS_3_DECIMALS = re.compile(rb'("ts"\s*:\s*-?\d+)\.(\d{3})(?![\deE])')
_TS_SHORT_DECIMALS = re.compile(rb'("ts"\s*:\s*-?\d+)\.(\d{1,2})(?![\deE])')
_TS_LEFTOVER = re.compile(rb'"ts"\s*:\s*-?\d+[.eE]')


def exact_ns_timestamps(raw: bytes | bytearray) -> tuple[bytes | bytearray, bool]:
    """Rewrite every ``ts`` as integer ns when float64 µs would lose digits.

    Recent Kineto makes ``ts`` relative to ``baseTimeNanoseconds`` (a few 1e12 µs: float64 keeps
    every ns). Older versions (e.g. HTA's ``ns_resolution`` trace) write epoch-based µs with ns
    decimals, ~1.7e15 µs, where float64's step is 0.25 µs. For those, ``1712195495519689.047``
    becomes the integer ``1712195495519689047`` before parsing, which orjson reads exactly.

    Returns the (possibly rewritten) text and whether ``ts`` values are now integer ns. Only files
    with a fractional timestamp >= 2**43 µs among their first 64 are touched; if any ``ts`` is written in a
    form not rewritten here (exponent, 4+ decimals), the text is returned unchanged.
    """
    if not needs_exact_ns(raw):
        return raw, False
    text = ns_rewrite(raw)
    return (raw, False) if text is None else (text, True)


def needs_exact_ns(raw: bytes | bytearray) -> bool:
    """True when a fractional ``ts`` >= 2**43 µs is among the first 64 (see :func:`exact_ns_timestamps`)."""
    sample = islice(_TS_VALUE.finditer(raw), _TS_SAMPLE)
    return any(m.group(2) and int(m.group(1)) >= FLOAT_EXACT_NS_LIMIT_US for m in sample)


def ns_rewrite(raw: bytes | bytearray) -> bytes | None:
    """Every ``ts`` of ``raw`` as integer ns (see :func:`exact_ns_timestamps`); None if some
    ``ts`` is written in a form not rewritten here (exponent, 4+ decimals)."""
    text = _TS_INT.sub(rb"\g<1>000", raw)
    text = _TS_3_DECIMALS.sub(rb"\1\2", text)
    text = _TS_SHORT_DECIMALS.sub(lambda m: m.group(1) + m.group(2).ljust(3, b"0"), text)
    if _TS_LEFTOVER.search(text):
        return None
    return text
