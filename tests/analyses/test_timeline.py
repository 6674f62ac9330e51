"""Device timelines on synthetic traces where every number is known by construction."""

from __future__ import annotations

import itertools
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import plain_json_events, shared_file, shared_traces
from tests.interval_oracle import merge

from infersight.analyses.kernel_names import simplify_kernel_name
from infersight.analyses.results import Window
from infersight.analyses.timeline import device_timeline, device_timelines, graph_coverage, total_timeline
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


def test_gaps_between_disjoint_window_intervals_are_not_counted() -> None:
    # window "step" ranges [0,400) and [1000,1400), clipped to the kernel span [0,1200);
    # k2 [350,1050) straddles the stretch between them. Busy inside: [0,100) [150,300) [350,400)
    # | [1000,1050) [1120,1200); gaps inside the intervals 50, 50, 70; [400,1000) is outside.
    ranges = {"start": [0, 1000], "end": [400, 1400], "name": ["step", "step"], "source": ["nvtx"] * 2}
    api = {
        "process": [0] * 4,
        "thread": [1] * 4,
        "start": [-50, -40, -30, -20],
        "end": [-45, -35, -25, -15],
        "name": ["cudaLaunchKernel"] * 4,
        "correlation": [1, 2, 3, 4],
    }
    t = _trace(_kernels([0, 150, 350, 1120], [100, 300, 1050, 1200]), api=api, ranges=ranges)
    (d,) = device_timelines(t, "^step$")
    assert d.window.intervals_ns == [(0, 400), (1000, 1200)]
    assert (d.wall_ns, d.busy_ns, d.idle_ns) == (600, 430, 170)
    assert [(b.lower_ns, b.count, b.total_ns) for b in d.gap_buckets if b.count] == [(0, 3, 170)]
    assert d.graph_coverage == 0.0 and d.eager_gap_buckets is not None  # every kernel eager
    assert [(b.count, b.total_ns) for b in d.eager_gap_buckets if b.count] == [(3, 170)]


GAP_EDGES_NS = (0, 5_000, 20_000, 100_000, 1_000_000)


def _plain_window_gaps(path: Path, regex: str, device: int) -> tuple[int, list[tuple[int, int]], int]:
    """(window intervals, (count, total) per gap bucket, gaps the naive histogram would add), by SQL
    over the nsys export and plain loops: the device's own process's matching NVTX ranges, busy
    blocks clipped to each window interval, and only gaps between two blocks of the same interval."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    kernels = con.execute(
        "SELECT start, end FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE deviceId = ?", (device,)
    ).fetchall()
    # only the ranges of the process that launched this device's kernels cut its window
    named = con.execute(
        "SELECT n.start, n.end, coalesce(n.text, s.value) FROM NVTX_EVENTS n "
        "LEFT JOIN StringIds s ON s.id = n.textId WHERE n.end IS NOT NULL AND n.globalTid >> 24 IN "
        "(SELECT DISTINCT globalPid >> 24 FROM CUPTI_ACTIVITY_KIND_KERNEL WHERE deviceId = ?)",
        (device,),
    ).fetchall()
    con.close()
    first, last = min(s for s, _ in kernels), max(e for _, e in kernels)
    ranges = [(max(s, first), min(e, last)) for s, e, name in named if name and re.search(regex, name)]
    windows = merge(ranges)
    pieces = []  # (window index, start, end) of busy time inside each window interval
    for s, e in merge(kernels):
        for i, (ws, we) in enumerate(windows):
            if min(e, we) > max(s, ws):
                pieces.append((i, max(s, ws), min(e, we)))
    pieces.sort(key=lambda p: p[1])
    inside = [b[1] - a[2] for a, b in itertools.pairwise(pieces) if a[0] == b[0]]
    across = sum(1 for a, b in itertools.pairwise(pieces) if a[0] != b[0])
    buckets = []
    for i, lower in enumerate(GAP_EDGES_NS):
        upper = GAP_EDGES_NS[i + 1] if i + 1 < len(GAP_EDGES_NS) else None
        sel = [g for g in inside if g >= lower and (upper is None or g < upper)]
        buckets.append((len(sel), sum(sel)))
    return len(windows), buckets, across


def test_window_gap_histogram_on_real_nsys_trace_matches_plain_sql() -> None:
    path = shared_file("nsys/h100x2_llm_train_nsys2026.sqlite")
    (trace,) = shared_traces("nsys/h100x2_llm_train_nsys2026.sqlite")
    regex = "^FlashAttnFunc"
    for d in device_timelines(trace, regex):
        assert d.device is not None
        windows, buckets, across = _plain_window_gaps(path, regex, d.device)
        assert len(d.window.intervals_ns) == windows > 1
        assert across > 0  # the naive histogram would have counted these stretches outside the window
        assert [(b.count, b.total_ns) for b in d.gap_buckets] == buckets
        assert sum(b.total_ns for b in d.gap_buckets) <= d.idle_ns
        assert d.graph_coverage == 0.0 and d.eager_gap_buckets is not None  # no graphs: all gaps eager
        assert [(b.count, b.total_ns) for b in d.eager_gap_buckets] == buckets


# ---------------------------------------------------------------- CUDA-graph coverage


def _graph_trace() -> Trace:
    """Eager and graph kernels with gaps known by construction (times in ns).

    corr 1 eager E0 [0,10); corr 2 one cudaGraphLaunch replaying G1 [20,30) and G2 [35,45);
    corr 3 eager E3 [60,70) (a second instance of E0's kernel, other template argument);
    corr 4 a driver-API cuGraphLaunch replaying G4 [200,210); corr 5 eager E5 [300,400) with
    corr 6 graph G6 [310,320) running concurrently inside it; corr 7 graph G7 [450,460).
    """
    kernels = {
        "device": [0] * 8,
        "start": [0, 20, 35, 60, 200, 300, 310, 450],
        "end": [10, 30, 45, 70, 210, 400, 320, 460],
        "name": [
            "void vllm::rms_norm_kernel<float>(float*)",
            "gemv",
            "gemv",
            "void vllm::rms_norm_kernel<c10::BFloat16>(c10::BFloat16*)",
            "gemv",
            "void flash::flash_fwd_kernel<Params>(Params)",
            "gemv",
            "gemv",
        ],
        "correlation": [1, 2, 2, 3, 4, 5, 6, 7],
        "process": [0] * 8,
    }
    api = {
        "process": [0] * 7,
        "thread": [1] * 7,
        "start": [-5, 15, 50, 190, 290, 305, 440],
        "end": [-1, 18, 55, 195, 295, 308, 445],
        "name": [
            "cudaLaunchKernel",
            "cudaGraphLaunch",
            "cudaLaunchKernelExC",
            "cuGraphLaunch",
            "cudaLaunchKernel",
            "cudaGraphLaunch",
            "cudaGraphLaunch",
        ],
        "correlation": [1, 2, 3, 4, 5, 6, 7],
        "source": ["runtime", "runtime", "runtime", "driver", "runtime", "runtime", "runtime"],
    }
    return _trace(kernels, api)


def test_graph_coverage_counts_kernels_of_graph_launches() -> None:
    (d,) = device_timelines(_graph_trace())
    assert d.kernel_count == 8
    assert d.graph_kernel_count == 5  # G1, G2, G4, G6, G7
    assert d.graph_kernel_time_ns == 10 + 10 + 10 + 10 + 10
    assert d.graph_coverage == pytest.approx(5 / 8)
    assert d.graph_coverage_na_reason is None
    assert d.graph_launch_count == 4  # corr 2, 4, 6, 7: one replay with two kernels counts once
    # eager kernels by simplified name: the two rms_norm instances merge under one name
    assert [(e.name, e.count, e.total_ns) for e in d.top_eager_kernels] == [
        ("flash::flash_fwd_kernel", 1, 100),
        ("vllm::rms_norm_kernel", 2, 20),
    ]


def test_eager_gap_buckets_keep_only_gaps_next_to_eager_kernels() -> None:
    (d,) = device_timelines(_graph_trace())
    # busy blocks [0,10) [20,30) [35,45) [60,70) [200,210) [300,400) [450,460); gaps:
    # 10 (E0->G1 eager), 5 (G1->G2 inside a graph), 15 (G2->E3), 130 (E3->G4),
    # 90 (G4->E5), 50 (E5 ends the block at 400 -> G7: eager; G6 inside it does not matter)
    all_gaps = {(b.lower_ns, b.count, b.total_ns) for b in d.gap_buckets if b.count}
    assert all_gaps == {(0, 6, 10 + 5 + 15 + 130 + 90 + 50)}
    assert d.eager_gap_buckets is not None
    eager = [(b.lower_ns, b.count, b.total_ns) for b in d.eager_gap_buckets if b.count]
    assert eager == [(0, 5, 10 + 15 + 130 + 90 + 50)]


def test_gap_between_graph_kernels_is_not_eager_even_beside_a_concurrent_eager_kernel() -> None:
    kernels = {
        "device": [0] * 3,
        "start": [0, 10, 50],
        "end": [40, 20, 60],
        "name": ["g", "e", "g"],
        "correlation": [1, 2, 3],
        "process": [0] * 3,
    }
    api = {
        "process": [0] * 3,
        "start": [-9, 1, 45],
        "end": [-8, 2, 46],
        "name": ["cudaGraphLaunch", "cudaLaunchKernel", "hipGraphLaunch"],
        "correlation": [1, 2, 3],
    }
    (d,) = device_timelines(_trace(kernels, api))
    assert (d.graph_kernel_count, d.graph_launch_count) == (2, 2)
    assert [b.total_ns for b in d.gap_buckets] == [10, 0, 0, 0, 0]
    assert d.eager_gap_buckets is not None
    assert [b.count for b in d.eager_gap_buckets] == [0, 0, 0, 0, 0]


def test_nsys_graph_ids_give_coverage_without_api_rows() -> None:
    k = _kernels([0, 20, 40, 60], [10, 30, 50, 70], corr=[1, 2, 2, 3])
    k["graph_id"] = [-1, 7, -1, -1]  # the second kernel of replay corr 2 lacks the id: joined by corr
    (d,) = device_timelines(_trace(k))
    assert d.graph_kernel_count == 2
    assert d.graph_coverage == pytest.approx(0.5)
    assert d.graph_launch_count == 1
    assert d.launch_overhead_ratio is None  # no API rows: launch overhead stays not applicable


def test_graph_coverage_not_applicable_without_api_or_graph_ids() -> None:
    (d,) = device_timelines(_trace(_kernels([0, 20], [10, 30])))
    assert d.graph_coverage is None and d.graph_kernel_count is None and d.graph_launch_count is None
    assert "no CUDA/HIP API calls and no CUDA-graph ids" in (d.graph_coverage_na_reason or "")
    assert d.eager_gap_buckets is None and d.top_eager_kernels == []
    # API rows that correlate with none of the kernels cannot tell eager from graph either
    api = {"start": [0], "end": [1], "name": ["cudaMalloc"], "correlation": [99]}
    (d,) = device_timelines(_trace(_kernels([0, 20], [10, 30]), api))
    assert d.graph_coverage is None
    assert "none of the 2 kernels correlates" in (d.graph_coverage_na_reason or "")


def test_eager_only_run_has_zero_coverage() -> None:
    api = {
        "process": [0, 0],
        "start": [-3, 15],
        "end": [-1, 18],
        "name": ["cudaLaunchKernel"] * 2,
        "correlation": [1, 2],
    }
    (d,) = device_timelines(_trace(_kernels([0, 20], [10, 30]), api))
    assert (d.graph_coverage, d.graph_kernel_count, d.graph_kernel_time_ns, d.graph_launch_count) == (
        0.0,
        0,
        0,
        0,
    )
    assert [(e.name, e.count, e.total_ns) for e in d.top_eager_kernels] == [("k0", 1, 10), ("k1", 1, 10)]
    assert d.eager_gap_buckets == d.gap_buckets


def test_graph_kernel_time_is_clipped_to_the_window() -> None:
    t = _graph_trace()
    w = Window(intervals_ns=[(25, 205)], duration_ns=180, source="nvtx:x")
    d = device_timeline(t, 0, w)
    # in window: G1 [25,30)=5, G2 10, E3 10, G4 [200,205)=5
    assert d.kernel_count == 4 and d.graph_kernel_count == 3
    assert d.graph_kernel_time_ns == 5 + 10 + 5
    assert [(e.name, e.total_ns) for e in d.top_eager_kernels] == [("vllm::rms_norm_kernel", 10)]


def test_top_eager_kernels_are_the_five_longest() -> None:
    n = 7
    starts = [i * 100 for i in range(n)]
    k = _kernels(starts, [s + 10 * (i + 1) for i, s in enumerate(starts)])
    api = {
        "process": [0] * n,
        "start": [s - 5 for s in starts],
        "end": [s - 1 for s in starts],
        "name": ["cudaLaunchKernel"] * n,
        "correlation": k["correlation"],
    }
    (d,) = device_timelines(_trace(k, api))
    assert [e.name for e in d.top_eager_kernels] == ["k6", "k5", "k4", "k3", "k2"]


def test_total_timeline_sums_graph_coverage() -> None:
    k0 = _kernels([0, 20], [10, 30], device=0, corr=[1, 2])
    k1 = _kernels([0, 20, 40], [10, 30, 40 + 25], device=1, corr=[3, 4, 5])
    kernels = {key: k0[key] + k1[key] for key in k0}
    api = {
        "process": [0] * 5,
        "start": [-2, 15, -2, 15, 35],
        "end": [-1, 16, -1, 16, 36],
        "name": [
            "cudaGraphLaunch",
            "cudaLaunchKernel",
            "cudaGraphLaunch",
            "cudaGraphLaunch",
            "cudaLaunchKernel",
        ],
        "correlation": [1, 2, 3, 4, 5],
    }
    d0, d1 = device_timelines(_trace(kernels, api))
    total = total_timeline([d0, d1])
    assert (total.graph_kernel_count, total.graph_launch_count) == (3, 3)
    assert total.graph_coverage == pytest.approx(3 / 5)
    assert total.graph_kernel_time_ns == 30
    assert [(e.name, e.total_ns) for e in total.top_eager_kernels] == [("k2", 25), ("k1", 10)]
    assert total.eager_gap_buckets is not None
    # d0: graph k0 -> eager k1 (10); d1: graph k0 -> graph k1 (not eager), graph k1 -> eager k2 (10)
    assert sum(b.total_ns for b in total.eager_gap_buckets) == 10 + 10
    # one device without coverage makes the total not applicable (a partial answer understates it)
    blind = d1.model_copy(update={"graph_coverage": None, "graph_coverage_na_reason": "no API"})
    assert total_timeline([d0, blind]).graph_coverage is None


def test_graph_coverage_helper_on_a_kernel_subset() -> None:
    """What phases.py can call: any row subset of a trace's kernels, without graph_id column."""
    t = _graph_trace()
    subset = t.kernels.iloc[[0, 1, 2]][["process", "correlation", "name", "start", "end"]]
    cov = graph_coverage([(t, subset)])
    assert (cov.graph_kernel_count, cov.graph_kernel_time_ns, cov.graph_launch_count) == (2, 20, 1)
    assert cov.graph_coverage == pytest.approx(2 / 3)
    assert [(e.name, e.total_ns) for e in cov.top_eager_kernels] == [("vllm::rms_norm_kernel", 10)]
    assert graph_coverage([(t, subset.iloc[:0])]).graph_coverage_na_reason == "no kernels"


VLLM = "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz"
GRAPH_LAUNCHES = ("cudaGraphLaunch", "cuGraphLaunch", "hipGraphLaunch")


def _ns(us: float) -> int:
    """µs float from JSON -> ns exactly as its decimal text says (no float rounding of big ts)."""
    return round(Decimal(repr(us)) * 1000)


def _plain_graph_figures(path: Path) -> dict[str, object]:
    """Graph coverage of a Kineto file from plain json: kernels whose args.correlation equals the
    correlation of a cuda_runtime/cuda_driver graph-launch event."""
    events = plain_json_events(path)
    graph_corr = {
        e["args"]["correlation"]
        for e in events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and e.get("name") in GRAPH_LAUNCHES
    }
    kernels = [e for e in events if e.get("cat") == "kernel" and e.get("ph") == "X"]
    graph = [k for k in kernels if k["args"].get("correlation") in graph_corr]
    eager = [k for k in kernels if k["args"].get("correlation") not in graph_corr]
    by_name: dict[str, list[int]] = {}
    for k in eager:
        entry = by_name.setdefault(simplify_kernel_name(k["name"]), [0, 0])
        entry[0] += 1
        entry[1] += round(k["dur"] * 1000)
    top = sorted(by_name.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:5]
    spans = [
        (_ns(k["ts"]), _ns(k["ts"]) + round(k["dur"] * 1000), k["args"].get("correlation") not in graph_corr)
        for k in kernels
    ]
    eager_gaps = _plain_eager_gaps(spans)
    return {
        "kernels": len(kernels),
        "graph": len(graph),
        "graph_ns": sum(round(k["dur"] * 1000) for k in graph),
        "launches": len({k["args"]["correlation"] for k in graph}),
        "graph_launch_events": len(graph_corr),
        "top": [(name, count, total) for name, (count, total) in top],
        "eager_gaps": eager_gaps,
    }


def _plain_eager_gaps(spans: list[tuple[int, int, bool]]) -> list[int]:
    """Idle gaps an eager kernel ends or starts, by a plain sweep over kernels sorted by start."""
    gaps: list[list] = []  # [length, eager on the left, eager on the right, next block start]
    block_end, end_is_eager = None, False
    for start, end, is_eager in sorted(s for s in spans if s[1] > s[0]):
        if block_end is None:
            block_end, end_is_eager = end, is_eager
            continue
        if start > block_end:  # a new busy block: the gap before it
            gaps.append([start - block_end, end_is_eager, False, start])
            block_end, end_is_eager = end, is_eager
        elif end > block_end:
            block_end, end_is_eager = end, is_eager
        elif end == block_end:
            end_is_eager = end_is_eager or is_eager
        if gaps and gaps[-1][3] == start:
            gaps[-1][2] = gaps[-1][2] or is_eager
    return [length for length, left, right, _ in gaps if left or right]


def test_graph_coverage_on_real_vllm_trace_matches_plain_json() -> None:
    path = shared_file(VLLM)
    plain = _plain_graph_figures(path)
    (trace,) = shared_traces(VLLM)
    (d,) = device_timelines(trace)
    assert (plain["kernels"], plain["graph"], plain["launches"]) == (13508, 8667, 729)
    assert plain["graph_launch_events"] == 729  # every cudaGraphLaunch replayed kernels
    assert d.kernel_count == plain["kernels"]
    assert d.graph_kernel_count == plain["graph"]
    assert d.graph_kernel_time_ns == plain["graph_ns"]
    assert d.graph_launch_count == plain["launches"]
    assert d.graph_coverage == pytest.approx(8667 / 13508)
    assert [(e.name, e.count, e.total_ns) for e in d.top_eager_kernels] == plain["top"]
    assert "flash::FlashAttnFwdSm90" in {e.name for e in d.top_eager_kernels}  # attention stays eager
    eager_gaps = plain["eager_gaps"]
    assert isinstance(eager_gaps, list)
    assert d.eager_gap_buckets is not None
    assert sum(b.count for b in d.eager_gap_buckets) == len(eager_gaps)
    assert sum(b.total_ns for b in d.eager_gap_buckets) == sum(eager_gaps)
    assert sum(b.total_ns for b in d.eager_gap_buckets) < sum(b.total_ns for b in d.gap_buckets)


def test_graph_coverage_on_piecewise_hip_graph_trace() -> None:
    """ROCm: hipGraphLaunch replays; checked against the same plain-json computation."""
    path = shared_file("kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz")
    plain = _plain_graph_figures(path)
    assert (plain["kernels"], plain["graph"], plain["launches"]) == (413, 361, 25)
    (d,) = device_timelines(
        shared_traces("kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz")[0]
    )
    assert (d.kernel_count, d.graph_kernel_count, d.graph_launch_count) == (413, 361, 25)
    assert d.graph_kernel_time_ns == plain["graph_ns"]
    assert [(e.name, e.count, e.total_ns) for e in d.top_eager_kernels] == plain["top"]
    assert d.top_eager_kernels[0].name == "kernel_unified_attention_2d"  # piecewise: attention eager
    eager_gaps = plain["eager_gaps"]
    assert isinstance(eager_gaps, list) and d.eager_gap_buckets is not None
    assert sum(b.total_ns for b in d.eager_gap_buckets) == sum(eager_gaps)


def test_cpu_capture_has_no_launches_or_graphs_and_says_why() -> None:
    t = _trace(_kernels([0, 50], [40, 90]))
    t.device_kind = "cpu"  # dominant CPU operators standing in for kernels
    (d,) = device_timelines(t)
    assert d.launch_overhead_ratio is None and d.graph_coverage is None
    assert (d.launch_overhead_na_reason or "").endswith("there are no kernel launches")
    assert (d.graph_coverage_na_reason or "").endswith("there are no CUDA graphs")
    assert "CPU capture" in (d.launch_overhead_na_reason or "") + (d.graph_coverage_na_reason or "")
    assert d.eager_gap_buckets is None
    assert [(b.count, b.total_ns) for b in d.gap_buckets if b.count] == [(1, 10)]
