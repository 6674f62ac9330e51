"""Vectorised lookups and join keys on numpy arrays that the readers and the analyses both use."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.isin(queries, sorted_values)`` for an already sorted array, by binary search
    (np.isin re-sorts both sides: seconds for a million gaps)."""
    if sorted_values.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    i = np.minimum(np.searchsorted(sorted_values, queries), sorted_values.size - 1)
    return sorted_values[i] == queries


def join_keys(
    first_a: np.ndarray, second_a: np.ndarray, first_b: np.ndarray, second_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per (first, second) pair of two tables, equal exactly for equal pairs.

    Each column is coded in a space shared by both tables (:func:`_shared_codes`), so the key is
    ``code_first * n_second + code_second`` whatever the raw values (Kineto thread ids, nsys
    globalTids near 2**56, -1 for unknown). A second column of small integers (correlation ids)
    is coded by its offset from the minimum instead: no hash pass over millions of distinct ids.
    """
    first_codes_a, first_codes_b, n_first = _shared_codes(first_a, first_b)
    second = _offset_codes(second_a, second_b, n_first)
    second_codes_a, second_codes_b, n_second = second or _shared_codes(second_a, second_b)
    width = max(n_second, 1)
    return first_codes_a * width + second_codes_a, first_codes_b * width + second_codes_b


def _offset_codes(a: np.ndarray, b: np.ndarray, n_first: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """``value - min`` as shared codes when the keys stay below 2**62 (else None)."""
    if not len(a) and not len(b):
        return None
    low = min(int(a.min()) if len(a) else int(b.min()), int(b.min()) if len(b) else int(a.min()))
    high = max(int(a.max()) if len(a) else int(b.max()), int(b.max()) if len(b) else int(a.max()))
    span = high - low + 1
    if span * max(n_first, 1) >= 2**62:
        return None
    return a.astype(np.int64) - low, b.astype(np.int64) - low, span


def _shared_codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of ``a`` and ``b`` in one shared space, and its size.

    Each side is factorised on its own (a hash pass, nearly free when there are few distinct
    values, as for the threads of millions of ranges); only the distinct values of ``b`` are then
    looked up among those of ``a``.
    """
    codes_a, uniques_a = pd.factorize(a)
    codes_b, uniques_b = pd.factorize(b)
    position = pd.Index(uniques_a).get_indexer(uniques_b)
    missing = position < 0
    position[missing] = len(uniques_a) + np.arange(int(missing.sum()))
    shared_b = position[codes_b] if len(codes_b) else codes_b
    return codes_a.astype(np.int64), shared_b.astype(np.int64), len(uniques_a) + int(missing.sum())
