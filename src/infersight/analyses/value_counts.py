"""Exact duration statistics from value counts: what lets per-rank digests merge losslessly.

A rank keeps its durations as ``(group, value, count)`` triples, one per distinct duration of a
group (a kernel or range name): kernels of one name repeat a few durations, so a million kernels
are a few thousand triples, and triples of many ranks concatenate. From the merged triples,
count, sum (int64), min, max and the median are exact; the mean is the int64 sum over the count;
the sample std (ddof=1, 0 for one value) takes two passes over the distinct values (deviations
from the mean, then their weighted squares), which agrees with pandas' one-pass figure to
~1e-12 relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STAT_COLUMNS = ("count", "sum", "mean", "median", "min", "max", "std")


@dataclass(frozen=True)
class ValueCounts:
    """Distinct (group, value) pairs and how often each occurs; int64 arrays of one length."""

    group: np.ndarray
    value: np.ndarray
    count: np.ndarray

    @staticmethod
    def of(group: np.ndarray, values: np.ndarray) -> ValueCounts:
        """The value counts of one value per row, sorted by (group, value)."""
        group = np.asarray(group, dtype=np.int64)
        values = np.asarray(values, dtype=np.int64)
        order = np.lexsort((values, group))
        g, v = group[order], values[order]
        new = np.ones(len(g), dtype=bool)
        new[1:] = (g[1:] != g[:-1]) | (v[1:] != v[:-1])
        first = np.flatnonzero(new)
        count = np.diff(np.append(first, len(g))).astype(np.int64)
        return ValueCounts(g[first], v[first], count)

    def regrouped(self, new_group_of: np.ndarray) -> ValueCounts:
        """The same counts under group ``new_group_of[group]`` (pairs may repeat: stats merge them)."""
        return ValueCounts(np.asarray(new_group_of, dtype=np.int64)[self.group], self.value, self.count)

    def totals(self, n_groups: int) -> np.ndarray:
        """Sum of the values of each group 0..n_groups-1, exact in int64."""
        out = np.zeros(n_groups, dtype=np.int64)
        np.add.at(out, self.group, self.value * self.count)
        return out

    @staticmethod
    def concat(parts: list[ValueCounts]) -> ValueCounts:
        """All parts' pairs in one table (groups must already share one numbering)."""
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return ValueCounts(empty, empty, empty)
        return ValueCounts(
            np.concatenate([p.group for p in parts]),
            np.concatenate([p.value for p in parts]),
            np.concatenate([p.count for p in parts]),
        )


def grouped_stats(counts: ValueCounts, n_groups: int) -> pd.DataFrame:
    """count/sum/mean/median/min/max/std (ddof=1, 0 for one value) per group 0..n_groups-1.

    Every group must have at least one value. Row ``i`` of the frame is group ``i``; the columns
    have pandas' groupby dtypes (count/sum/min/max int64, the rest float64).
    """
    order = np.lexsort((counts.value, counts.group))
    g, v, c = counts.group[order], counts.value[order], counts.count[order]
    first = np.flatnonzero(np.append(True, g[1:] != g[:-1])) if len(g) else np.empty(0, np.int64)
    if len(first) != n_groups or (n_groups and not np.array_equal(g[first], np.arange(n_groups))):
        raise ValueError("grouped_stats: every group 0..n_groups-1 needs at least one value")
    last = np.append(first[1:], len(g)) - 1
    n = np.add.reduceat(c, first) if n_groups else np.empty(0, np.int64)
    total = np.add.reduceat(v * c, first) if n_groups else np.empty(0, np.int64)
    cumulative = np.cumsum(c)
    before = cumulative[first] - c[first] if n_groups else np.empty(0, np.int64)
    # the value at sorted position p of a group: the first pair whose cumulative count exceeds p
    lower = v[np.searchsorted(cumulative, before + (n - 1) // 2, side="right")].astype(np.float64)
    upper = v[np.searchsorted(cumulative, before + n // 2, side="right")].astype(np.float64)
    mean = total / np.maximum(n, 1)
    deviation = v - np.repeat(mean, last - first + 1)
    squares = np.add.reduceat(c * deviation * deviation, first) if n_groups else np.empty(0)
    std = np.where(n > 1, np.sqrt(squares / np.maximum(n - 1, 1)), 0.0)
    return pd.DataFrame(
        {
            "count": n.astype(np.int64),
            "sum": total.astype(np.int64),
            "mean": mean,
            "median": (lower + upper) / 2,
            "min": v[first],
            "max": v[last],
            "std": std,
        }
    )
