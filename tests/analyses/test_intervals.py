"""Interval math: exact small cases and hypothesis properties against a brute-force timeline."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from infersight.analyses import intervals

interval_lists = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 60)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=25,
)


def _arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _brute_cover(pairs: list[tuple[int, int]], horizon: int = 300) -> np.ndarray:
    cover = np.zeros(horizon, dtype=bool)
    for s, e in pairs:
        cover[s:e] = True
    return cover


def test_overlapping_kernels_counted_once() -> None:
    s, e = np.array([0, 5, 20]), np.array([10, 15, 30])
    us, ue = intervals.union(s, e)
    assert us.tolist() == [0, 20] and ue.tolist() == [15, 30]
    assert intervals.total_length(s, e) == 25


def test_nested_interval_does_not_end_the_block() -> None:
    assert intervals.total_length([0, 2, 50], [100, 3, 60]) == 100


def test_intersection_and_clip() -> None:
    s, e = intervals.intersect([0, 20], [10, 30], [5, 25], [22, 40])
    assert list(zip(s.tolist(), e.tolist(), strict=True)) == [(5, 10), (20, 22), (25, 30)]
    cs, ce = intervals.clip([0], [100], (np.array([10, 50]), np.array([20, 60])))
    assert (ce - cs).sum() == 20


def test_touching_intervals_do_not_intersect() -> None:
    s, _ = intervals.intersect([0], [10], [10], [20])
    assert s.size == 0


def test_overlap_lengths_and_gaps() -> None:
    window = (np.array([10, 50]), np.array([20, 60]))
    got = intervals.overlap_lengths([0, 15, 30, 55], [100, 18, 40, 70], window)
    assert got.tolist() == [20, 3, 0, 5]
    g0, g1 = intervals.gaps([0, 5, 20, 40], [10, 12, 30, 41])
    assert list(zip(g0.tolist(), g1.tolist(), strict=True)) == [(12, 20), (30, 40)]


def test_overlaps_any() -> None:
    window = (np.array([10, 50]), np.array([20, 60]))
    got = intervals.overlaps_any([0, 20, 19, 45, 60, 12], [10, 50, 21, 51, 61, 12], window)
    assert got.tolist() == [False, False, True, True, False, True]


@settings(max_examples=examples(ci=200), deadline=None)
@given(interval_lists)
def test_union_length_matches_brute_force(pairs: list[tuple[int, int]]) -> None:
    s, e = _arrays(pairs)
    total = intervals.total_length(s, e)
    assert total == int(_brute_cover(pairs).sum())
    assert total <= int((e - s).sum())
    if pairs:
        assert total <= int(e.max() - s.min())


@settings(max_examples=examples(ci=200), deadline=None)
@given(interval_lists, st.randoms(use_true_random=False))
def test_union_is_idempotent_and_order_independent(pairs: list[tuple[int, int]], rnd) -> None:  # type: ignore[no-untyped-def]
    s, e = _arrays(pairs)
    us, ue = intervals.union(s, e)
    again_s, again_e = intervals.union(us, ue)
    assert again_s.tolist() == us.tolist() and again_e.tolist() == ue.tolist()
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    ss, se = intervals.union(*_arrays(shuffled))
    assert ss.tolist() == us.tolist() and se.tolist() == ue.tolist()


@settings(max_examples=examples(ci=200), deadline=None)
@given(interval_lists, interval_lists)
def test_intersection_matches_brute_force(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    s, e = intervals.intersect(*_arrays(a), *_arrays(b))
    expected = _brute_cover(a) & _brute_cover(b)
    got = _brute_cover(list(zip(s.tolist(), e.tolist(), strict=True)))
    assert (got == expected).all()
    assert (s[1:] > e[:-1]).all()  # disjoint, sorted, non-touching


@given(interval_lists, interval_lists)
def test_subtraction_matches_brute_force(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    s, e = intervals.subtract(*_arrays(a), *_arrays(b))
    expected = _brute_cover(a) & ~_brute_cover(b)
    got = _brute_cover(list(zip(s.tolist(), e.tolist(), strict=True)))
    assert (got == expected).all()
    assert (e > s).all() and (s[1:] > e[:-1]).all()  # non-empty, sorted, disjoint, non-touching


@given(interval_lists)
def test_a_union_is_its_own_union_and_a_copy(pairs: list[tuple[int, int]]) -> None:
    s, e = intervals.union(*_arrays(pairs))
    again_s, again_e = intervals.union(s, e)
    assert again_s.tolist() == s.tolist() and again_e.tolist() == e.tolist()
    assert not np.shares_memory(again_s, s) and not np.shares_memory(again_e, e)


def test_subtraction_at_the_ends_of_the_int64_range() -> None:
    top = np.iinfo(np.int64).max
    bottom = np.iinfo(np.int64).min
    a = (np.array([bottom, top - 10]), np.array([bottom + 10, top]))
    b = (np.array([bottom, top - 5]), np.array([bottom + 5, top]))
    s, e = intervals.subtract(*a, *b)
    assert s.tolist() == [bottom + 5, top - 10] and e.tolist() == [bottom + 10, top - 5]


@settings(max_examples=examples(ci=200), deadline=None)
@given(interval_lists, interval_lists)
def test_overlap_lengths_match_brute_force(
    items: list[tuple[int, int]], window: list[tuple[int, int]]
) -> None:
    win = intervals.union(*_arrays(window))
    cover = _brute_cover(window)
    got = intervals.overlap_lengths(*_arrays(items), win)
    expected = [int(cover[s:e].sum()) for s, e in items]
    assert got.tolist() == expected
