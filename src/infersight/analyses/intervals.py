"""Vectorised interval arithmetic on half-open ``[start, end)`` int64 nanosecond intervals.

Every GPU-time metric in methodology §3 is interval math: busy time is the *union* of kernel
intervals (concurrent kernels count once), idle is the window minus that union, and clipped
times are overlaps with a window. Doing it with sort + cumulative max keeps a million kernels
at numpy speed instead of a Python loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def _as_int(values: npt.ArrayLike) -> IntArray:
    return np.asarray(values, dtype=np.int64)


def union(starts: npt.ArrayLike, ends: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Merge intervals into sorted, disjoint intervals (touching intervals merge too).

    Sort by start; an interval opens a new merged block when it starts after the running
    maximum of all previous ends. A set that is already a union (sorted, each interval
    non-empty and starting after the previous one ends) comes back as a copy without the sort:
    :func:`intersect` and :func:`subtract` union both their arguments, which are most often
    unions already (busy time, idle gaps, windows).
    """
    s, e = _as_int(starts), _as_int(ends)
    if _is_union(s, e):
        return s.copy(), e.copy()
    keep = e > s  # empty intervals add nothing to a union
    s, e = s[keep], e[keep]
    if s.size == 0:
        return s, e
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    running_end = np.maximum.accumulate(e)
    new_block = np.empty(s.size, dtype=bool)
    new_block[0] = True
    new_block[1:] = s[1:] > running_end[:-1]
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, s.size - 1)
    return s[first], running_end[last]


def _is_union(starts: IntArray, ends: IntArray) -> bool:
    """True when the intervals are already sorted, non-empty, disjoint and non-touching."""
    return bool((ends > starts).all()) and bool((starts[1:] > ends[:-1]).all())


def total_length(starts: npt.ArrayLike, ends: npt.ArrayLike) -> int:
    """Length of the union of the intervals (each instant counted once)."""
    us, ue = union(starts, ends)
    return int((ue - us).sum())


def intersect(
    a_starts: npt.ArrayLike, a_ends: npt.ArrayLike, b_starts: npt.ArrayLike, b_ends: npt.ArrayLike
) -> tuple[IntArray, IntArray]:
    """Intersection of two interval sets, as sorted disjoint intervals.

    Both sets are unioned first; then each interval of ``a`` meets the run of ``b`` intervals
    that end after it starts and start before it ends (two binary searches), and every such
    pair contributes its overlap. Pieces never touch, since neither union has touching
    intervals, so the result is already a union.
    """
    as_, ae = union(a_starts, a_ends)
    bs, be = union(b_starts, b_ends)
    return _intersect_unions(as_, ae, bs, be)


def _intersect_unions(as_: IntArray, ae: IntArray, bs: IntArray, be: IntArray) -> tuple[IntArray, IntArray]:
    """:func:`intersect` of two sets that are unions already (sorted, disjoint, non-touching).

    An empty interval is allowed in ``b`` (it adds nothing): :func:`subtract` passes the
    complement of a set starting at the lowest or ending at the highest int64.
    """
    first = np.searchsorted(be, as_, side="right")  # first b ending after each a starts
    stop = np.searchsorted(bs, ae, side="left")  # first b starting at or after each a ends
    counts = np.maximum(stop - first, 0)
    pairs = int(counts.sum())
    if pairs == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy()
    a_index = np.repeat(np.arange(as_.size), counts)
    # b_index runs first[i], first[i] + 1, ... within each a interval's group of pairs
    group_start = np.cumsum(counts) - counts
    b_index = np.arange(pairs) + np.repeat(first - group_start, counts)
    s = np.maximum(as_[a_index], bs[b_index])
    e = np.minimum(ae[a_index], be[b_index])
    keep = e > s
    return s[keep], e[keep]


def clip(
    starts: npt.ArrayLike, ends: npt.ArrayLike, window: tuple[IntArray, IntArray]
) -> tuple[IntArray, IntArray]:
    """The parts of the intervals' union that lie inside the window (itself an interval set)."""
    return intersect(starts, ends, window[0], window[1])


def covered_before(union_starts: IntArray, union_ends: IntArray, t: npt.ArrayLike) -> IntArray:
    """For each time ``t``: length of the (disjoint, sorted) interval set lying before ``t``.

    ``covered_before(b) - covered_before(a)`` is the overlap of ``[a, b)`` with the set, which
    gives clipped durations of many intervals against one window in one vectorised call.

    The covered length is a piecewise-linear function of ``t`` (slope 1 inside the set, 0 in its
    gaps), so ``np.interp`` evaluates it in one C pass whose search starts from the previous
    answer (NVTX range starts and ends come nearly sorted): ~1.8x faster than a binary search
    per query for millions of ranges. It computes in float64, exact for integers below 2**53,
    which holds once times are taken relative to the set's start for any span under 104 days;
    otherwise, or for a set whose intervals touch, the integer path below runs.
    """
    t = _as_int(t)
    if union_starts.size == 0 or t.size == 0:
        return np.zeros(t.shape, dtype=np.int64)
    exact = _covered_before_by_interp(union_starts, union_ends, t)
    if exact is not None:
        return exact
    # j = the last interval starting at or before t; the answer is the length of the intervals
    # before j plus min(t, end_j) - start_j. An empty interval at the earliest time stands in
    # for "none starts before t".
    floor = min(int(union_starts[0]), int(t.min()))
    starts = np.concatenate([[floor], union_starts]).astype(np.int64, copy=False)
    ends = np.concatenate([[floor], union_ends]).astype(np.int64, copy=False)
    length_before = np.zeros(starts.size, dtype=np.int64)
    np.cumsum(union_ends[:-1] - union_starts[:-1], out=length_before[2:])
    offset = length_before - starts
    j = np.searchsorted(starts, t, side="right") - 1  # >= 0: starts[0] <= every t
    covered = offset[j]
    covered += np.minimum(t, ends[j])
    return covered


_FLOAT_EXACT = 2**53  # every integer below it is a float64


def _covered_before_by_interp(union_starts: IntArray, union_ends: IntArray, t: IntArray) -> IntArray | None:
    """:func:`covered_before` by ``np.interp`` on times relative to the set's start (None: not exact)."""
    origin = int(union_starts[0])
    if max(int(union_ends[-1]) - origin, origin - int(t.min()), int(t.max()) - origin) >= _FLOAT_EXACT:
        return None
    knots = np.empty(2 * union_starts.size, dtype=np.int64)
    knots[0::2], knots[1::2] = union_starts, union_ends
    if not bool((knots[1:] > knots[:-1]).all()):  # touching or empty intervals: no function of t
        return None
    lengths = union_ends - union_starts
    covered_at_end = np.cumsum(lengths)
    covered = np.empty(knots.size, dtype=np.float64)
    covered[0::2], covered[1::2] = covered_at_end - lengths, covered_at_end
    relative = (t - origin).astype(np.float64)
    return np.interp(relative, (knots - origin).astype(np.float64), covered).astype(np.int64)


def overlap_lengths(
    starts: npt.ArrayLike, ends: npt.ArrayLike, window: tuple[IntArray, IntArray]
) -> IntArray:
    """Per interval: how much of it lies inside the window (a disjoint sorted interval set)."""
    ws, we = window
    return covered_before(ws, we, ends) - covered_before(ws, we, starts)


def overlaps_any(
    starts: npt.ArrayLike, ends: npt.ArrayLike, window: tuple[IntArray, IntArray]
) -> npt.NDArray[np.bool_]:
    """Per interval: does it touch the window? Zero-length intervals count when inside it."""
    s, e = _as_int(starts), _as_int(ends)
    ws, we = window
    if ws.size == 0:
        return np.zeros(s.shape, dtype=bool)
    # the first window interval whose end is after s; overlap iff it starts before e (or at s)
    i = np.searchsorted(we, s, side="right")
    inside = i < ws.size
    j = np.minimum(i, ws.size - 1)
    return inside & ((ws[j] < e) | ((ws[j] <= s) & (s < we[j])))


def gaps(starts: npt.ArrayLike, ends: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Idle stretches between consecutive busy blocks of the intervals' union."""
    us, ue = union(starts, ends)
    return ue[:-1], us[1:]


def subtract(
    a_starts: npt.ArrayLike, a_ends: npt.ArrayLike, b_starts: npt.ArrayLike, b_ends: npt.ArrayLike
) -> tuple[IntArray, IntArray]:
    """The parts of interval set ``a`` not covered by set ``b``, as sorted disjoint intervals.

    Both sets are unioned first; ``a`` is then intersected with the complement of ``b`` (its
    gaps, and everything before its first and after its last interval).
    """
    as_, ae = union(a_starts, a_ends)
    bs, be = union(b_starts, b_ends)
    if as_.size == 0 or bs.size == 0:
        return as_, ae
    lowest, highest = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    outside_starts = np.concatenate([[lowest], be]).astype(np.int64, copy=False)
    outside_ends = np.concatenate([bs, [highest]]).astype(np.int64, copy=False)
    return _intersect_unions(as_, ae, outside_starts, outside_ends)
