"""Vectorised lookups on numpy arrays that the readers and the analyses both use."""

from __future__ import annotations

import numpy as np


def sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.isin(queries, sorted_values)`` for an already sorted array, by binary search
    (np.isin re-sorts both sides: seconds for a million gaps)."""
    if sorted_values.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_values, queries), sorted_values.size - 1)
    return sorted_values[i] == queries
