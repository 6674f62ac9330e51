"""Device timelines on synthetic traces where every number is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from infersight.analyses.results import Window
from infersight.analyses.timeline import device_timeline, device_timelines, total_timeline
from infersight.analyses.window import analysis_window, analysis_windows
from infersight.errors import InputError
from infersight.model import Trace
from infersight.model.trace import (
    API_COLUMNS,
    KERNEL_COLUMNS,
    MEMCPY_COLUMNS,
    MEMSET_COLUMNS,
    RANGE_COLUMNS,
    make_table,
)


def _trace(kernels: dict, api: dict | None = None, ranges: dict | None = None, **tables: dict) -> Trace:
    t = Trace(source="synthetic.json", format="kineto")
    t.kernels = make_table(KERNEL_COLUMNS, kernels, "kernels")
    if api is not None:
        t.api = make_table(API_COLUMNS, api, "api")
    if ranges is not None:
        t.ranges = make_table(RANGE_COLUMNS, ranges, "ranges")
    if "memcpy" in tables:
        t.memcpy = make_table(MEMCPY_COLUMNS, tables["memcpy"], "memcpy")
    if "memset" in tables:
        t.memset = make_table(MEMSET_COLUMNS, tables["memset"], "memset")
    t.check_schema()
    return t


def _kernels(starts: list[int], ends: list[int], device: int = 0, corr: list[int] | None = None) -> dict:
    n = len(starts)
    return {
        "device": [device] * n,
        "start": starts,
        "end": ends,
        "name": [f"k{i}" for i in range(n)],
        "correlation": corr if corr is not None else list(range(1, n + 1)),
        "process": [0] * n,
    }


def test_overlapping_kernels_count_once_and_idle_is_exact() -> None:
    # [0,100) and [50,150) overlap -> busy 150; [300,400) -> busy 250 of wall 400
    t = _trace(_kernels([0, 50, 300], [100, 150, 400]))
    (d,) = device_timelines(t)
    assert d.wall_ns == 400
    assert d.busy_ns == 250
    assert d.idle_ns == 150
    assert d.idle_ratio == pytest.approx(150 / 400)
    assert d.utilization == pytest.approx(250 / 400)
    assert d.kernel_count == 3
    assert d.kernel_time_ns == 300  # concurrent kernels count twice here
    assert d.launch_overhead_ratio is None
    assert "no CUDA/HIP API calls" in (d.launch_overhead_na_reason or "")
    assert [(b.lower_ns, b.count, b.total_ns) for b in d.gap_buckets if b.count] == [(0, 1, 150)]


def test_launch_overhead_ratio_is_exact() -> None:
    kernels = _kernels([100, 200, 300], [150, 260, 400], corr=[1, 2, 2])  # corr 2: one graph, two kernels
    api = {
        "process": [0, 0, 0, 0],
        "thread": [7, 7, 7, 7],
        "start": [90, 180, 185, 195],
        "end": [110, 190, 187, 205],
        "name": ["cudaLaunchKernel", "cudaGraphLaunch", "cudaMemcpyAsync", "cudaLaunchKernel"],
        "correlation": [1, 2, 3, 99],  # 99 matches no kernel: counts only because one device
    }
    (d,) = device_timelines(_trace(kernels, api))
    # window [100, 400): launch 1 clipped to [100,110)=10, graph launch 10, stray launch 10
    assert d.launch_api_count == 3
    assert d.launch_api_ns == 30
    assert d.launch_overhead_ratio == pytest.approx(30 / 300)


def test_unmatched_launches_do_not_count_with_several_devices() -> None:
    k0 = _kernels([0], [100], device=0, corr=[1])
    k1 = _kernels([0], [100], device=1, corr=[2])
    kernels = {key: k0[key] + k1[key] for key in k0}
    api = {
        "process": [0, 0, 0],
        "thread": [1, 1, 1],
        "start": [10, 20, 30],
        "end": [15, 27, 39],
        "name": ["cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernel"],
        "correlation": [1, 2, 3],
    }
    d0, d1 = device_timelines(_trace(kernels, api))
    assert (d0.launch_api_ns, d1.launch_api_ns) == (5, 7)
    total = total_timeline([d0, d1])
    assert total.device is None
    assert total.wall_ns == 200 and total.busy_ns == 200
    assert total.launch_api_ns == 12
    assert total.launch_overhead_ratio == pytest.approx(12 / 200)


def test_api_without_launch_calls_is_not_applicable() -> None:
    api = {"thread": [1], "start": [0], "end": [5], "name": ["cudaMalloc"], "correlation": [1]}
    (d,) = device_timelines(_trace(_kernels([0], [10]), api))
    assert d.launch_overhead_ratio is None
    assert "none is a kernel launch" in (d.launch_overhead_na_reason or "")


def test_total_idle_ratio_is_device_time_weighted() -> None:
    k0 = _kernels([0, 90], [10, 100], device=0)  # wall 100, busy 20
    k1 = _kernels([0], [300], device=1)  # wall 300, busy 300
    kernels = {key: k0[key] + k1[key] for key in k0}
    devs = device_timelines(_trace(kernels))
    total = total_timeline(devs)
    assert total.idle_ratio == pytest.approx(80 / 400)
    assert total.kernel_count == 3


def test_window_regex_is_union_of_matching_ranges_clipped() -> None:
    ranges = {
        "start": [50, 250, 0, 10],
        "end": [150, 1000, 20, 20],
        "name": ["step 1", "step 2", "warmup", "step 3"],
        "source": ["nvtx", "user_annotation", "nvtx", "cpu_op"],  # cpu_op never selects a window
    }
    t = _trace(_kernels([0, 100, 300], [100, 200, 500]), ranges=ranges)
    w = analysis_window(t, 0, r"^step")
    assert w.intervals_ns == [(50, 150), (250, 500)]
    assert w.duration_ns == 350
    assert w.source == "nvtx:^step"
    d = device_timeline(t, 0, w)
    # busy inside: [50,150) fully covered by k0/k1 = 100; [300,500) = 200 -> 300 of 350
    assert d.busy_ns == 300
    assert d.kernel_count == 3
    assert d.kernel_time_ns == 50 + 50 + 200


def test_window_regex_matching_nothing_names_the_regex_and_ranges() -> None:
    ranges = {"start": [0], "end": [5], "name": ["forward"], "source": ["nvtx"]}
    t = _trace(_kernels([0], [10]), ranges=ranges)
    with pytest.raises(InputError, match=r"'decode_\.\*' matches no NVTX.*'forward'"):
        analysis_windows(t, "decode_.*")
    with pytest.raises(InputError, match="not a valid regex"):
        analysis_windows(t, "(")


def test_default_window_is_first_kernel_start_to_last_end() -> None:
    t = _trace(_kernels([500, 100], [900, 200]))
    assert analysis_window(t, 0) == Window(intervals_ns=[(100, 900)], duration_ns=800, source="kernels")


def test_transfers_per_direction_in_window() -> None:
    memcpy = {
        "device": [0, 0, 0, 0],
        "start": [10, 20, 30, 5000],
        "end": [20, 30, 50, 5010],
        "bytes": [1000, 3000, 400, 7],
        "kind": ["HtoD", "HtoD", "DtoH", "HtoD"],
        "src_kind": ["pageable", "pinned", "device", "pinned"],
        "dst_kind": ["device", "device", "pinned", "device"],
    }
    memset = {"device": [0], "start": [60], "end": [61], "bytes": [64]}
    t = _trace(_kernels([0], [100]), memcpy=memcpy, memset=memset)
    (d,) = device_timelines(t)
    by = {s.direction: s for s in d.transfers}
    assert set(by) == {"HtoD", "DtoH", "memset"}
    htod = by["HtoD"]
    assert (htod.count, htod.total_ns, htod.bytes, htod.pageable_count) == (2, 20, 4000, 1)
    assert by["HtoD"].bandwidth_gb_per_s == pytest.approx(200.0)
    assert (by["DtoH"].count, by["memset"].bytes) == (1, 64)


def test_kernel_straddling_window_edge_is_counted_and_clipped() -> None:
    t = _trace(_kernels([0, 100], [200, 300]))
    w = Window(intervals_ns=[(150, 250)], duration_ns=100, source="nvtx:x")
    d = device_timeline(t, 0, w)
    assert d.kernel_count == 2
    assert d.kernel_time_ns == 50 + 100
    assert d.busy_ns == 100 and d.idle_ratio == 0.0
    assert np.isclose(d.utilization, 1.0)
