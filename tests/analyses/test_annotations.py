"""The intervals behind ``infersight annotate``'s tracks, checked against a naive oracle.

``bucket_intervals`` must give, for every instant of a device's window, the bucket of
docs/methodology.md §3.2 (compute kernel > collective > copy/memset > nothing). The oracle here
cuts the window at every start/end and classifies each elementary piece by plain membership
tests (bisect over merged lists), never through ``infersight.analyses.intervals``.
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_file, shared_traces
from tests.interval_oracle import Interval, merge

from infersight import api
from infersight.analyses.annotations import GapCauses, annotate_trace, gap_causes, phase_runs
from infersight.analyses.attribution import (
    BUCKETS,
    bucket_intervals,
    bucket_times,
    device_activity,
    kernel_labels,
)
from infersight.host.config import load_config

TRACES = [
    "nsys/vecadd_t4_nsys2022.sqlite",
    "nsys/vectoradd_a4500_memcpy.sqlite",
    "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz",
    "kineto/hta_nccl_a100_rank0.json.gz",
    "nsys/h100x2_llm_train_nsys2026.sqlite",
    "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz",
]


def _inside(merged: list[Interval], starts: list[int], t: int) -> bool:
    i = bisect.bisect_right(starts, t) - 1
    return i >= 0 and merged[i][0] <= t < merged[i][1]


def _oracle(compute: list[Interval], comm: list[Interval], copy: list[Interval], window: Interval) -> dict:
    sets = [merge(compute), merge(comm), merge(copy)]
    firsts = [[s for s, _ in merged] for merged in sets]
    points = sorted(
        {window[0], window[1]} | {p for s in sets for i in s for p in i if window[0] < p < window[1]}
    )
    out: dict[str, list[Interval]] = {b: [] for b in BUCKETS}
    for p, q in itertools.pairwise(points):
        bucket = next((b for b, s, f in zip(BUCKETS, sets, firsts, strict=False) if _inside(s, f, p)), "host")
        pieces = out[bucket]
        if pieces and pieces[-1][1] == p:
            pieces[-1] = (pieces[-1][0], q)
        else:
            pieces.append((p, q))
    return out


def _pairs(spans: tuple[np.ndarray, np.ndarray]) -> list[Interval]:
    return list(zip(spans[0].tolist(), spans[1].tolist(), strict=True))


@pytest.mark.parametrize("relative", TRACES)
def test_bucket_intervals_match_the_oracle_and_bucket_times(relative: str) -> None:
    trace = shared_traces(relative)[0]
    labels = kernel_labels(trace)
    devices = sorted(
        {int(d) for d in trace.kernels["device"].unique()} | {int(d) for d in trace.memcpy["device"].unique()}
    )
    for device in devices:
        activity = device_activity(trace, device, labels)
        span = activity.span()
        assert span is not None
        window = (np.array([span[0]], dtype=np.int64), np.array([span[1]], dtype=np.int64))
        got = bucket_intervals(activity, window)
        expected = _oracle(_pairs(activity.compute), _pairs(activity.comm), _pairs(activity.copy), span)
        for bucket in BUCKETS:
            assert _pairs(got[bucket]) == expected[bucket], (relative, device, bucket)
        times = bucket_times(activity, window)
        assert {b: int((got[b][1] - got[b][0]).sum()) for b in BUCKETS} == times


def test_annotation_names_every_host_gap_by_its_length() -> None:
    trace = api.load([shared_file(TRACES[2])])[0]
    causes = gap_causes(load_config().section("drilldown"))
    annotation = annotate_trace(trace, causes)
    (device,) = annotation.devices
    starts, ends = device.buckets["host"]
    assert device.host_cause.shape == starts.shape
    for length, cause in zip((ends - starts).tolist(), device.host_cause.tolist(), strict=True):
        lower = causes.edges_ns[cause]
        upper = causes.edges_ns[cause + 1] if cause + 1 < len(causes.edges_ns) else None
        assert lower <= length and (upper is None or length < upper)


def test_gap_causes_follow_the_host_thresholds_table() -> None:
    causes = gap_causes(load_config().section("drilldown"))
    assert causes.causes[0] == "normal dispatch" and causes.causes[-1].startswith("host sync")
    table = GapCauses(edges_ns=(0, 1_000, 5_000), causes=("a", "b", "c"))
    assert table.of(np.array([0, 999, 1_000, 4_999, 5_000, 10**9])).tolist() == [0, 0, 1, 1, 2, 2]


def test_phase_runs_merge_consecutive_steps_of_one_phase() -> None:
    steps = pd.DataFrame(
        {
            "device": [0, 0, 0, 0, 1],
            "phase": ["prefill", "decode", "decode", "prefill", "decode"],
            "step": [0, 1, 2, 3, 0],
            "start": [0, 10, 20, 30, 5],
            "end": [9, 19, 29, 39, 15],
        }
    )
    runs = phase_runs(steps)
    assert runs.to_dict("records") == [
        {"device": 0, "phase": "prefill", "start": 0, "end": 9, "steps": 1},
        {"device": 0, "phase": "decode", "start": 10, "end": 29, "steps": 2},
        {"device": 0, "phase": "prefill", "start": 30, "end": 39, "steps": 1},
        {"device": 1, "phase": "decode", "start": 5, "end": 15, "steps": 1},
    ]
