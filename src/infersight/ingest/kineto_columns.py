"""Column builders for the Kineto reader: lists of parsed Chrome-trace events -> numpy columns.

Kineto files hold 10^4-10^6 events, so everything here works on whole columns: one list
comprehension per field pulls the raw values out of the event dicts, numpy converts them, and
anything that must look at individual values (string thread ids, memcpy names, API version
suffixes) does so once per *distinct* value, never once per event.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

Event = dict[str, Any]
_EMPTY_ARGS: dict[str, Any] = {}
_NO_DIM = (0, 0, 0)
# float64 µs values beyond this cannot be turned into int64 ns (year 2262): treat them as invalid.
_MAX_ABS_US = 9.0e15


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

    def __len__(self) -> int:
        return len(self.events)

    def args(self) -> list[dict[str, Any]]:
        """The ``args`` dict of every event ({} where absent or not an object)."""
        args = values(self.events, "args", _EMPTY_ARGS)
        if all(map(isinstance, args, repeat(dict))):
            return args
        return [a if isinstance(a, dict) else _EMPTY_ARGS for a in args]

    def field(self, key: str) -> list[Any]:
        """One top-level field of every event (None where absent)."""
        return values(self.events, key)


def values(dicts: list[dict[str, Any]], key: str, default: Any = None) -> list[Any]:
    """``d.get(key, default)`` for every dict, looped in C (``map``): the hot path of the reader."""
    return list(map(dict.get, dicts, repeat(key), repeat(default)))


def float_column(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(float64 array, valid mask) of numeric JSON values; None/strings/bools become invalid."""
    try:
        arr = np.array(values, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError):
        cleaned = [v if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
        arr = np.array(cleaned, dtype=np.float64)
    valid = np.isfinite(arr)
    return arr, valid


def exact_int_column(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(int64 array, valid mask) for values that must stay exact integers (ns timestamps)."""
    try:
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
    """Convert ``ts``/``dur`` of complete ("X") events; drop those without a usable interval."""
    ts_values = values(events, "ts")
    if ts_in_ns:
        start, ts_ok = exact_int_column(ts_values)
    else:
        start, ts_ok = us_to_ns(ts_values)
    dur, dur_ok = us_to_ns(values(events, "dur"))
    valid = ts_ok & dur_ok & (dur >= 0)
    end = start + dur
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
    mapping: dict[Any, int] = {}
    out = np.empty(len(values), dtype=dtype)
    for i, value in enumerate(values):  # only reached when ids are strings/None: few distinct
        key = value if isinstance(value, str | int | float) else None
        if key not in mapping:
            mapping[key] = value if type(value) is int else _string_id(value)
        out[i] = mapping[key]
    return out


def arg_ints(args: list[dict[str, Any]], key: str, fallback: Sequence[Any] | int) -> np.ndarray:
    """``args[key]`` as int64, taking ``fallback`` (a column or a constant) where it is absent."""
    if isinstance(fallback, int):
        return int_column(values(args, key, fallback))
    return int_column(list(map(dict.get, args, repeat(key), fallback)))


def dims(args: list[dict[str, Any]], key: str) -> np.ndarray:
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


def leaf_mask(thread: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """True for intervals that contain no other interval of the same thread (leaf operators).

    Sorted by (thread, start, -end), well-nested intervals come in pre-order: an interval's
    first child, if it has one, is the very next row. So a row is a leaf unless the next row
    is on the same thread and starts before this one ends.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((-end, start, thread))
    t, s, e = thread[order], start[order], end[order]
    has_child = np.zeros(n, dtype=bool)
    has_child[:-1] = (t[1:] == t[:-1]) & (s[1:] < e[:-1])
    leaf = np.empty(n, dtype=bool)
    leaf[order] = ~has_child
    return leaf
