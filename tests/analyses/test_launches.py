"""The (process, correlation) join helpers against pandas merges written out in the test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infersight.analyses.launches import first_match, join_keys


def _merge_first(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Left join on the pair keeping the right side's first row: what first_match must equal."""
    right = right.assign(row=np.arange(len(right))).drop_duplicates(["process", "correlation"])
    joined = left.merge(right, on=["process", "correlation"], how="left", sort=False)
    return joined["row"].fillna(-1).to_numpy(np.int64)


@pytest.mark.parametrize(
    "processes",
    [
        [0, 1, 7],  # small ids
        [-1, 2**56 + 4096, 2**57 + 8192],  # nsys globalPids near 2**56, -1 = unknown
    ],
)
@pytest.mark.parametrize("correlation_high", [50, 2**61])  # offset codes, and the hash fallback
def test_first_match_equals_a_pandas_left_merge(processes: list[int], correlation_high: int) -> None:
    rng = np.random.default_rng(7)

    def table(n: int) -> pd.DataFrame:
        correlation = rng.integers(-1, 60, n)
        correlation[correlation >= 50] = correlation_high  # some huge ids when asked
        return pd.DataFrame({"process": rng.choice(processes, n), "correlation": correlation})

    left, right = table(400), table(300)  # duplicates and -1 on both sides
    got = first_match(left["process"], left["correlation"], right["process"], right["correlation"])
    np.testing.assert_array_equal(got, _merge_first(left, right))
    assert (got >= 0).any() and (got < 0).any()


def test_first_match_with_an_empty_side() -> None:
    empty = pd.Series([], dtype=np.int64)
    some = pd.Series([1, 2], dtype=np.int64)
    np.testing.assert_array_equal(first_match(some, some, empty, empty), [-1, -1])
    assert len(first_match(empty, empty, some, some)) == 0


def test_join_keys_are_equal_exactly_for_equal_pairs() -> None:
    first_a, second_a = np.array([5, 5, 6, -1]), np.array([0, 1, 0, 2**62])
    first_b, second_b = np.array([5, 6, 6, -1, 5]), np.array([1, 0, 1, 2**62, 0])
    key_a, key_b = join_keys(first_a, second_a, first_b, second_b)
    pairs_a = list(zip(first_a.tolist(), second_a.tolist(), strict=True))
    pairs_b = list(zip(first_b.tolist(), second_b.tolist(), strict=True))
    for i, pa in enumerate(pairs_a):
        for j, pb in enumerate(pairs_b):
            assert (key_a[i] == key_b[j]) == (pa == pb)
