"""Plain-Python interval arithmetic, independent of infersight: the oracle tests compare with.

Deliberately naive (sorted lists, two-pointer walks) so it cannot share a bug with the
vectorised code in ``infersight.analyses.intervals``.
"""

from __future__ import annotations

Interval = tuple[int, int]


def merge(intervals: list[Interval]) -> list[Interval]:
    """The union as sorted, disjoint intervals (empty intervals dropped)."""
    out: list[list[int]] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def length(intervals: list[Interval]) -> int:
    """Length of the union."""
    return sum(e - s for s, e in merge(intervals))


def overlap(a: list[Interval], b: list[Interval]) -> int:
    """Length of union(a) ∩ union(b), by a two-pointer walk."""
    a, b = merge(a), merge(b)
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        total += max(0, hi - lo)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total
