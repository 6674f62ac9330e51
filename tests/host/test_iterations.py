"""Iteration isolation on hand-built traces: TP de-dup, warm-up drop, density fallback."""

from __future__ import annotations

import numpy as np
from builders import build_trace

from infersight.host.config import load_config
from infersight.host.iterations import dedup_ranges, isolate_iterations
from infersight.model.trace import RANGE_COLUMNS, make_table

CONFIG = load_config()


def test_dedup_merges_other_ranks_within_100us_keeping_max_end() -> None:
    starts = np.array([0, 30_000, 1_000_000, 1_050_000, 1_200_000], dtype=np.int64)
    ends = np.array([500_000, 600_000, 1_500_000, 1_400_000, 1_300_000], dtype=np.int64)
    owners = np.array([1, 2, 1, 2, 1])
    s, e, merged = dedup_ranges(starts, ends, 100_000, owners)
    assert s.tolist() == [0, 1_000_000, 1_200_000]
    assert e.tolist() == [600_000, 1_500_000, 1_300_000]
    assert merged == 2


def test_same_thread_ranges_are_never_merged() -> None:
    s, _, merged = dedup_ranges(np.array([0, 50_000]), np.array([40_000, 90_000]), 100_000, np.array([1, 1]))
    assert s.tolist() == [0, 50_000] and merged == 0


def test_tp_duplicates_and_warmup_step() -> None:
    kernels = []
    ranges = []
    for k in range(5):  # five decode steps; the first (warm-up / JIT) takes 10x longer
        t = 1000 * k
        length = 500 if k == 0 else 50
        kernels += [(t + 2, t + 2 + length, "gemv")]
        ranges += [(t, t + 600, "decode")]
    trace = build_trace(kernels, ranges)
    rank1 = trace.ranges.assign(thread=2, start=trace.ranges["start"] + 20_000)  # second TP rank, +20 µs
    trace.ranges = make_table(
        RANGE_COLUMNS, {c: np.concatenate([trace.ranges[c], rank1[c]]) for c in RANGE_COLUMNS}
    )
    it, _ = isolate_iterations(trace, CONFIG)
    assert it.method == "step-ranges"
    assert it.deduplicated_ranges == 5 and "merged" in it.reason
    assert len(it.steps) == 5
    assert [s.warmup for s in it.steps] == [True, False, False, False, False]
    assert it.warmup_dropped == 1 and len(it.steady()) == 4


def test_density_fallback_without_markers_or_allreduce() -> None:
    kernels = [(b * 5000 + i * 10, b * 5000 + i * 10 + 8, "k") for b in range(3) for i in range(25)]
    it, frame = isolate_iterations(build_trace(kernels), CONFIG)
    assert it.method == "density" and "3 bursts" in it.reason
    assert sorted(np.unique(frame["step"]).tolist()) == [0, 1, 2]
    assert "no allreduce kernels" in it.reason and "no NVTX" in it.reason
