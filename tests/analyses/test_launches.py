"""The (process, correlation) join helpers, and per-device launch overhead, against pandas merges
written out in the test."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_traces

from infersight.analyses import launches
from infersight.analyses.launches import LAUNCH_API_NAMES, first_match
from infersight.analyses.timeline import device_timeline, device_timelines
from infersight.model import Trace
from infersight.model.arrays import join_keys


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


TWO_GPU_NSYS = "nsys/h100x2_llm_train_nsys2026.sqlite"  # two devices, correlation ids repeat per process


@pytest.fixture(scope="module")
def two_gpu_trace() -> Trace:
    (trace,) = shared_traces(TWO_GPU_NSYS)
    return trace


def _pandas_launch_overhead(trace: Trace, device: int, window: tuple[int, int]) -> tuple[int, int]:
    """(count, clipped ns) of one device's launch calls, written out with a pandas merge: a call
    belongs to the device of the first kernel with its (process, correlation)."""
    calls = trace.api[trace.api["name"].astype(str).isin(LAUNCH_API_NAMES)]
    kernels = trace.kernels[["process", "correlation", "device"]].drop_duplicates(["process", "correlation"])
    joined = calls.merge(kernels, on=["process", "correlation"], how="left")
    mine = joined[joined["device"] == device]
    start, end = mine["start"].to_numpy(np.int64), mine["end"].to_numpy(np.int64)
    low, high = window
    touching = (start < high) & ((end > low) | (start >= low))
    clipped = np.minimum(end, high) - np.maximum(start, low)
    return int(touching.sum()), int(clipped[touching].sum())


def test_per_device_launch_overhead_matches_a_pandas_merge(two_gpu_trace: Trace) -> None:
    timelines = device_timelines(two_gpu_trace)
    assert sorted(t.device for t in timelines) == [0, 1]
    for timeline in timelines:
        ((low, high),) = timeline.window.intervals_ns
        count, ns = _pandas_launch_overhead(two_gpu_trace, int(timeline.device or 0), (low, high))
        assert count > 1000  # both GPUs launch: the split by device is exercised
        assert (timeline.launch_api_count, timeline.launch_api_ns) == (count, ns)


def test_launch_calls_are_joined_to_kernels_once_per_trace(
    two_gpu_trace: Trace, monkeypatch: pytest.MonkeyPatch
) -> None:
    joins: list[int] = []
    real = launches.launch_call_devices

    def counted(trace: Trace, calls: pd.DataFrame) -> np.ndarray:
        joins.append(len(calls))
        return real(trace, calls)

    monkeypatch.setattr(launches, "launch_call_devices", counted)
    fresh = dataclasses.replace(two_gpu_trace, api=two_gpu_trace.api.copy())  # not cached yet
    first = device_timelines(fresh)
    again = [device_timeline(fresh, t.device or 0, t.window) for t in first]
    assert len(joins) == 1 and len(first) == 2
    assert [t.launch_api_ns for t in again] == [t.launch_api_ns for t in first]
    replaced = dataclasses.replace(fresh, api=fresh.api.iloc[: len(fresh.api) // 2].copy())
    halved = device_timelines(replaced)  # another api table: joined again, not served stale
    assert len(joins) == 2
    assert sum(t.launch_api_count or 0 for t in halved) < sum(t.launch_api_count or 0 for t in first)
