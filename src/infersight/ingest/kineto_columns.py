"""Column builders for the Kineto reader: lists of parsed Chrome-trace events -> numpy columns.

Kineto files hold 10^4-10^6 events, so everything here works on whole columns: one list
comprehension per field pulls the raw values out of the event dicts, numpy converts them, and
anything that must look at individual values (string thread ids, memcpy names, API version
suffixes) does so once per *distinct* value, never once per event.

The events are either dicts (orjson) or msgspec structs (:mod:`infersight.ingest.kineto_structs`,
the fast path): :func:`values` and :func:`values_or` read a field of either, so the builders
are the same for both.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from infersight.ingest.checks import interval_in_limits
from infersight.ingest.kineto_structs import ABSENT, ATTRIBUTE, MAY_BE_ABSENT, is_struct_list

Event = dict[str, Any]
_EMPTY_ARGS: dict[str, Any] = {}
_NO_DIM = (0, 0, 0)
# float64 µs values beyond this cannot be turned into int64 ns (year 2262): treat them as invalid.
_MAX_ABS_US = 9.0e15
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass
class EventBatch:
    """Events of one kind with their valid timestamps, already converted to int64 ns.

    ``events[i]`` is the event whose interval is ``[start[i], end[i]]``; events without a usable
    ``ts``/``dur`` (or with a negative ``dur``) were dropped and counted in ``dropped``.
    """

    events: list[Event]
    start: np.ndarray
    end: np.ndarray
    dropped: int = 0
    device: np.ndarray | None = None  # int64 device ids, once checked (see device_column)
    bad_device: int = 0  # events dropped because their device id is unusable

    def __len__(self) -> int:
        return len(self.events)

    def args(self) -> list[Any]:
        """The ``args`` of every event ({} where absent or not an object; structs: their args struct)."""
        if is_struct_list(self.events):  # an event without args has the empty Args
            return list(map(_ARGS, self.events))
        args = values(self.events, "args", _EMPTY_ARGS)
        if all(map(isinstance, args, repeat(dict))):
            return args
        return [a if isinstance(a, dict) else _EMPTY_ARGS for a in args]

    def field(self, key: str) -> list[Any]:
        """One top-level field of every event (None where absent)."""
        return values(self.events, key)


_ARGS = attrgetter("args")


def values(dicts: Sequence[Any], key: str, default: Any = None) -> list[Any]:
    """``d.get(key, default)`` for every dict, looped in C (``map``): the hot path of the reader.

    Structs (:mod:`kineto_structs`): the attribute of ``key``; an absent key reads as the struct
    field's default, which is the default every reader of that key passes, or ``ABSENT`` (then
    replaced by ``default`` here).
    """
    if not is_struct_list(dicts):
        return list(map(dict.get, dicts, repeat(key), repeat(default)))
    attr = ATTRIBUTE.get(key, key)
    got = list(map(attrgetter(attr), dicts))
    if attr in MAY_BE_ABSENT and ABSENT in got:
        return [default if v is ABSENT else v for v in got]
    return got


def values_or(dicts: Sequence[Any], key: str, fallback: Sequence[Any]) -> list[Any]:
    """``d.get(key, fallback[i])`` for every dict (or struct, see :func:`values`)."""
    if not is_struct_list(dicts):
        return list(map(dict.get, dicts, repeat(key), fallback))
    got = list(map(attrgetter(ATTRIBUTE.get(key, key)), dicts))
    if ABSENT in got:
        return [f if v is ABSENT else v for v, f in zip(got, fallback, strict=True)]
    return got


def has_bool(values: Sequence[Any]) -> bool:
    """True when a JSON ``true``/``false`` is among ``values`` (one C-level pass over the types).

    numpy reads booleans as 1/0, so ``"ts": true`` would silently become 1 µs: booleans are not
    numbers, and the columns that need numbers check for them first.
    """
    return bool in set(map(type, values))


def float_column(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(float64 array, valid mask) of numeric JSON values; None/strings/bools become invalid."""
    try:
        if has_bool(values):
            raise TypeError("booleans are not numbers")
        arr = np.array(values, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError, OverflowError):
        cleaned = [v if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
        arr = np.array(cleaned, dtype=np.float64)
    valid = np.isfinite(arr)
    return arr, valid


def exact_int_column(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(int64 array, valid mask) for values that must stay exact integers (ns timestamps)."""
    try:
        if has_bool(values):
            raise TypeError("booleans are not numbers")
        return np.array(values, dtype=np.int64), np.ones(len(values), dtype=bool)
    except (TypeError, ValueError, OverflowError):
        valid = np.array([type(v) is int and abs(v) < 2**63 for v in values], dtype=bool)
        ints = [v if ok else 0 for v, ok in zip(values, valid, strict=True)]
        return np.array(ints, dtype=np.int64), valid


def us_to_ns(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """µs (int or float) -> (int64 ns, valid) with ``round(v * 1000)`` done exactly.

    The whole-µs part is converted as an integer and only the fraction is scaled, so epoch-based
    timestamps (~1.7e15 µs, beyond 2**53 once multiplied by 1000) keep every digit the float holds.
    """
    us, valid = float_column(values)
    valid &= np.abs(np.where(valid, us, 0.0)) < _MAX_ABS_US
    us = np.where(valid, us, 0.0)
    whole = np.floor(us)
    ns = whole.astype(np.int64) * 1000 + np.rint((us - whole) * 1000.0).astype(np.int64)
    return ns, valid


def event_batch(events: list[Event], *, ts_in_ns: bool) -> EventBatch:
    """Convert ``ts``/``dur`` of complete ("X") events; drop those without a usable interval.

    Usable: numeric (not boolean), ``dur`` >= 0, and within the time limits of
    :func:`~infersight.ingest.checks.interval_in_limits` (so ``ts + dur`` and every later
    difference of two times fit in int64).
    """
    ts_values = values(events, "ts")
    if ts_in_ns:
        start, ts_ok = exact_int_column(ts_values)
    else:
        start, ts_ok = us_to_ns(ts_values)
    dur, dur_ok = us_to_ns(values(events, "dur"))
    with np.errstate(over="ignore"):  # a wrapped sum gives end < start: caught just below
        end = start + np.where(dur_ok, dur, 0)
    valid = ts_ok & dur_ok & interval_in_limits(start, end)
    if bool(valid.all()):
        return EventBatch(events, start, end)
    kept = [e for e, ok in zip(events, valid, strict=True) if ok]
    return EventBatch(kept, start[valid], end[valid], dropped=int((~valid).sum()))


_DIGITS = re.compile(r"-?\d+")


def _string_id(value: Any) -> int:
    """A stable integer for a non-integer id: the number inside it ("stream 7" -> 7) or a CRC.

    CRC-based ids are negative (below -1, which means "unknown") so they never collide with a
    real thread/stream id and are the same for the same string in every file and every run.
    """
    if isinstance(value, str):
        found = _DIGITS.search(value)
        if found and found.group(0) == value.strip().split()[-1]:
            return int(found.group(0))
        return -2 - zlib.crc32(value.encode("utf-8", "replace"))
    if isinstance(value, float) and np.isfinite(value):
        return int(value)
    return -1


def int_column(values: Sequence[Any], dtype: str = "int64") -> np.ndarray:
    """Integer ids from JSON values; strings map stably to ints, anything unusable to -1."""
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        pass
    return _int_column_slow(values, dtype)


def _int_column_slow(values: Sequence[Any], dtype: str) -> np.ndarray:
    """:func:`int_column` for columns holding strings, None, booleans or out-of-range ints.

    Looked up once per distinct value (keyed with the type: ``True == 1`` in Python). Booleans
    and integers that do not fit ``dtype`` are unusable (-1), never wrapped.
    """
    info = np.iinfo(dtype)
    mapping: dict[tuple[type, Any], int] = {}
    out = np.empty(len(values), dtype=dtype)
    for i, value in enumerate(values):  # only reached when ids are strings/None: few distinct
        key = (type(value), value if isinstance(value, str | int | float) else None)
        if key not in mapping:
            if type(value) is int:
                mapping[key] = value if info.min <= value <= info.max else -1
            else:
                mapping[key] = _string_id(value) if not isinstance(value, bool) else -1
        out[i] = mapping[key]
    return out


def device_column(raw: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(int64 device ids, valid mask): ids must fit the model's int32 device column.

    A device id of 2**32 would wrap to device 0 and merge two devices' timelines without a
    word: such ids (and booleans) are marked invalid for the reader to drop with a note.
    Strings map as in :func:`int_column`.
    """
    if not has_bool(raw):
        try:
            device = np.array(raw, dtype=np.int64)
            return device, (device >= INT32_MIN) & (device <= INT32_MAX)
        except (TypeError, ValueError, OverflowError):
            pass
    cache: dict[tuple[type, Any], tuple[int, bool]] = {}
    device = np.empty(len(raw), dtype=np.int64)
    valid = np.empty(len(raw), dtype=bool)
    for i, value in enumerate(raw):  # rare path (strings, None, booleans, huge ids): per distinct value
        key = (type(value), value if isinstance(value, str | int | float) else None)
        if key not in cache:
            cache[key] = _device_id(value)
        device[i], valid[i] = cache[key]
    return device, valid


def _device_id(value: Any) -> tuple[int, bool]:
    """(id, usable) of one raw device value; string ids stay distinct negative int32 values."""
    if isinstance(value, bool):
        return -1, False
    if type(value) is int:
        return (value, True) if INT32_MIN <= value <= INT32_MAX else (-1, False)
    ident = _string_id(value) if isinstance(value, str | float) else -1
    if isinstance(value, str) and ident < INT32_MIN:  # a CRC-based id: a name, kept distinct
        ident = -2 - (-2 - ident) % (2**31 - 2)
    return (ident, True) if INT32_MIN <= ident <= INT32_MAX else (-1, False)


def arg_ints(args: list[Any], key: str, fallback: Sequence[Any] | int) -> np.ndarray:
    """``args[key]`` as int64, taking ``fallback`` (a column or a constant) where it is absent."""
    if isinstance(fallback, int):
        return int_column(values(args, key, fallback))
    return int_column(values_or(args, key, fallback))


def dims(args: list[Any], key: str) -> np.ndarray:
    """``args[key]`` given as ``[x, y, z]`` -> (n, 3) int32; malformed or absent -> zeros."""
    raw = values(args, key)
    rows = [v if type(v) is list and len(v) == 3 else _NO_DIM for v in raw]
    try:
        return np.array(rows, dtype=np.int64).reshape(len(rows), 3).clip(0, 2**31 - 1).astype(np.int32)
    except (TypeError, ValueError, OverflowError):
        return np.zeros((len(rows), 3), dtype=np.int32)


def names(batch: EventBatch) -> pd.Categorical[str]:
    """Event names as a categorical of strings ("" where absent or null)."""
    raw = values(batch.events, "name", "")
    cat = pd.Categorical(raw)
    if cat.isna().any() or not all(map(isinstance, cat.categories, repeat(str))):
        cat = pd.Categorical(["" if v is None else str(v) for v in raw])
    return cat


def map_categories(values: pd.Categorical[str], transform: dict[str, str]) -> pd.Categorical[str]:
    """Rewrite the categories of ``values`` through ``transform`` (merging names that collide)."""
    cats = [transform.get(str(c), str(c)) for c in values.categories]
    uniq, inverse = np.unique(np.array(cats, dtype=object), return_inverse=True)
    codes = np.asarray(values.codes, dtype=np.int64)
    new_codes = np.where(codes >= 0, inverse[np.maximum(codes, 0)], -1).astype(np.int64)
    return pd.Categorical.from_codes(new_codes, categories=pd.Index([str(u) for u in uniq]))


def op_parents(thread: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, parent): the (thread, start, -end) sort order and each sorted op's parent.

    ``parent[k]`` is the position (in sorted order) of the innermost op of the same thread that
    was still open when sorted op ``k`` started, or -1 for a top-level op. Sorted this way,
    well-nested intervals come in pre-order, so one stack pass finds every parent: pop the ops
    that ended at or before this start, the top of what is left is the parent. Of identical
    intervals the later one (file order, the sort is stable) is the child; an op that starts
    exactly where another ends is its sibling, not its child.

    This is a Python loop, the one per-event loop in the reader: it runs only for the opt-in
    CPU-only mode (10^4-10^5 ``cpu_op`` events, ~20 ms per 100k here) and touches plain lists of ints.
    """
    order = np.lexsort((-end, start, thread))
    starts = start[order].tolist()
    ends = end[order].tolist()
    threads = thread[order].tolist()
    parent = [-1] * len(starts)
    stack: list[int] = []
    current_thread: int | None = None
    for k, (op_thread, op_start) in enumerate(zip(threads, starts, strict=True)):
        if op_thread != current_thread:
            stack.clear()
            current_thread = op_thread
        while stack and ends[stack[-1]] <= op_start:
            stack.pop()
        if stack:
            parent[k] = stack[-1]
        stack.append(k)
    return order, np.array(parent, dtype=np.int64)


def dominant_mask(thread: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """True for the *dominant* operators: the units of work of a CPU operator timeline.

    Walking each thread's operator tree from the top, an op is dominant when its self time
    (duration minus the union of its direct children) is at least half its duration, and no
    ancestor is dominant; otherwise the walk descends into its children. A leaf always qualifies.

    Why not leaves: ``aten::mm`` calls tiny ``aten::resolve_conj`` children, so taking leaves
    keeps the children and drops the GEMM that holds nearly all the time. Dominant ops never
    contain one another, so on well-nested threads (Kineto's RecordFunction ranges are) they do
    not overlap, and they cover almost all operator time: what is lost is only the self time of
    non-dominant ancestors, less than half of each.

    Direct children of one op never overlap each other (a later sibling starting inside an
    earlier one would be that one's child), so their union is the sum of their durations, each
    clipped to the parent's end in case a malformed child outlives its parent.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order, parent = op_parents(thread, start, end)
    s, e = start[order], end[order]
    has_parent = parent >= 0
    children = np.flatnonzero(has_parent)
    up = parent[children]
    children_time = np.zeros(n, dtype=np.int64)
    np.add.at(children_time, up, np.minimum(e[children], e[up]) - s[children])
    duration = e - s
    qualifies = 2 * (duration - children_time) >= duration
    # an op is blocked when some ancestor qualifies: climb one level per pass (a few passes:
    # operator trees are a handful of levels deep), all ops at once
    blocked = np.zeros(n, dtype=bool)
    ancestor = parent.copy()
    live = np.flatnonzero(ancestor >= 0)
    while len(live):
        blocked[live] |= qualifies[ancestor[live]]
        ancestor[live] = parent[ancestor[live]]
        live = live[(ancestor[live] >= 0) & ~blocked[live]]
    dominant = np.empty(n, dtype=bool)
    dominant[order] = qualifies & ~blocked
    return dominant
