"""NVTX/annotation summary and GPU projection on synthetic traces with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infersight.analyses.ranges import _first_of_each_key, grouped_union_length, range_summary
from infersight.model import Trace
from infersight.model.trace import API_COLUMNS, KERNEL_COLUMNS, RANGE_COLUMNS, make_table


def _graph_trace(with_api: bool = True) -> Trace:
    """Thread 7 opens 'forward' [0, 100) with nested 'layer' [10, 30); inside 'layer' one
    cudaGraphLaunch (corr 5) replays 3 kernels; a cudaLaunchKernel at 50 (corr 6) launches one.
    Thread 8 launches corr 7 at 20 (inside the time span, but another thread: not projected).
    """
    t = Trace(source="graph.json", format="kineto")
    t.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0, 0, 0, 0, 0],
            "start": [200, 210, 205, 400, 220],
            "end": [300, 250, 260, 450, 230],
            "name": ["a", "b", "c", "d", "e"],
            "correlation": [5, 5, 5, 6, 7],
            "process": [0] * 5,
        },
    )
    if with_api:
        t.api = make_table(
            API_COLUMNS,
            {
                "process": [0, 0, 0],
                "thread": [7, 7, 8],
                "start": [15, 50, 20],
                "end": [25, 55, 22],
                "name": ["cudaGraphLaunch", "cudaLaunchKernel", "cudaLaunchKernel"],
                "correlation": [5, 6, 7],
            },
        )
    t.ranges = make_table(
        RANGE_COLUMNS,
        {
            "process": [0, 0, 0, 0, 0],
            "thread": [7, 7, 7, 0, 7],
            "start": [0, 10, 60, 215, 0],
            "end": [100, 30, 70, 255, 5],
            "name": ["forward", "layer", "forward", "gpu_step", "aten::mm"],
            "source": ["nvtx", "nvtx", "nvtx", "gpu_user_annotation", "cpu_op"],
            "device": [-1, -1, -1, 0, -1],
        },
    )
    t.check_schema()
    return t


def test_projection_through_cuda_graph_launch() -> None:
    stats = {s.name: s for s in range_summary([_graph_trace()])}
    assert "aten::mm" not in stats  # cpu_op is not summarised
    layer = stats["layer"]
    assert (layer.gpu_kernel_count, layer.gpu_time_ns) == (3, 100 + 40 + 55)
    assert layer.gpu_busy_ns == 100  # [200,300) covers the other two
    fwd = stats["forward"]
    assert (fwd.count, fwd.total_ns, fwd.min_ns, fwd.max_ns) == (2, 110, 10, 100)
    assert fwd.avg_ns == 55.0 and fwd.median_ns == 55.0
    assert fwd.std_ns == pytest.approx(np.std([100, 10], ddof=1))
    assert (fwd.gpu_kernel_count, fwd.gpu_time_ns, fwd.gpu_busy_ns) == (4, 195 + 50, 150)


def test_gpu_annotation_gets_overlapping_kernels_clipped() -> None:
    gpu = next(s for s in range_summary([_graph_trace()]) if s.name == "gpu_step")
    # window [215, 255): a [215,255)=40, b [215,250)=35, c [215,255)=40, e [220,230)=10
    assert gpu.source == "gpu_user_annotation"
    assert (gpu.gpu_kernel_count, gpu.gpu_time_ns, gpu.gpu_busy_ns) == (4, 125, 40)


def test_projection_not_applicable_without_api() -> None:
    stats = {s.name: s for s in range_summary([_graph_trace(with_api=False)])}
    assert stats["forward"].gpu_kernel_count is None
    assert "no CUDA/HIP API calls" in (stats["forward"].projection_na_reason or "")
    assert stats["gpu_step"].gpu_kernel_count == 4  # GPU ranges need no correlation


def test_fold_keeps_top_names_and_exact_statistics_of_the_rest() -> None:
    """Ten unique names with durations 1..10 (plus 'x' twice): a cap of 3 keeps 'x' (total 30),
    n10 and n9; the other 8 names fold into one row whose median/min/max are over their ranges."""
    t = Trace(source="u.json", format="kineto")
    names = [f"n{i}" for i in range(1, 11)] + ["x", "x"]
    durations = [*range(1, 11), 15, 15]
    starts = np.arange(len(names)) * 100
    t.ranges = make_table(
        RANGE_COLUMNS,
        {
            "start": starts,
            "end": starts + np.array(durations),
            "name": names,
            "source": ["user_annotation"] * 12,
        },
    )
    stats = range_summary([t], max_names=3)
    assert [s.name for s in stats] == ["x", "n10", "n9", "other (8 names)"]
    other = stats[-1]
    assert (other.count, other.total_ns, other.min_ns, other.max_ns) == (8, 36, 1, 8)
    assert other.median_ns == 4.5 and other.std_ns == pytest.approx(np.std(np.arange(1, 9), ddof=1))
    assert [s.name for s in range_summary([t], max_names=None)][:3] == ["x", "n10", "n9"]
    assert len(range_summary([t], max_names=None)) == 11


def test_max_range_names_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from infersight.analyses.ranges import DEFAULT_MAX_RANGE_NAMES, MAX_RANGE_NAMES_ENV, max_range_names

    monkeypatch.setenv(MAX_RANGE_NAMES_ENV, "7")
    assert max_range_names() == 7
    monkeypatch.setenv(MAX_RANGE_NAMES_ENV, "many")
    assert max_range_names() == DEFAULT_MAX_RANGE_NAMES


def test_grouped_union_length() -> None:
    group = np.array([1, 0, 1, 1, 0])
    s = np.array([0, 5, 5, 50, 100])
    e = np.array([10, 6, 20, 60, 101])
    assert grouped_union_length(group, s, e, 3).tolist() == [2, 30, 0]


# The launches (runtime call joined to its kernel) go into a temporary table indexed on (thread,
# call start) first: the range join then searches the index instead of scanning every launch for
# every range (0.1 s instead of 6 s on the h100x2 export; the same rows either way).
_SQL_LAUNCHES = """
CREATE TEMP TABLE l AS
WITH k AS (SELECT correlationId c, globalPid p, start s, "end" e FROM CUPTI_ACTIVITY_KIND_KERNEL)
SELECT r.globalTid tid, r.start rs, k.s, k.e FROM CUPTI_ACTIVITY_KIND_RUNTIME r
JOIN k ON k.c = r.correlationId AND k.p = (r.globalTid >> 24) << 24
"""
_SQL_LAUNCHES_INDEX = "CREATE INDEX temp.l_at ON l (tid, rs)"
_SQL_PROJECTION = """
WITH n AS (SELECT COALESCE(n.text, s.value) name, n.start, n."end", n.globalTid FROM NVTX_EVENTS n
      LEFT JOIN StringIds s ON s.id = n.textId WHERE n.eventType IN (59, 60))
SELECT n.name, COUNT(l.s), COALESCE(SUM(l.e - l.s), 0) FROM n
LEFT JOIN temp.l l ON l.tid = n.globalTid AND l.rs >= n.start AND l.rs < n."end" GROUP BY n.name
"""
_SQL_SUMMARY = """
SELECT COALESCE(n.text, s.value), COUNT(*), SUM(n."end" - n.start) FROM NVTX_EVENTS n
LEFT JOIN StringIds s ON s.id = n.textId WHERE n.eventType IN (59, 60) GROUP BY 1
"""


@pytest.mark.parametrize(
    "relative", ["nsys/tensorrt_conv_rtx3090.sqlite", "nsys/h100x2_llm_train_nsys2026.sqlite"]
)
def test_nvtx_summary_and_projection_match_plain_sql(relative: str) -> None:
    """Like nsys stats nvtx_sum (count, total per name), plus the launch-correlated projection.

    The h100x2 export has two processes whose correlation ids repeat: the SQL joins on the
    process (globalTid with the low 24 bits cleared), as methodology §1 requires.
    """
    import sqlite3

    from tests.conftest import shared_file, shared_traces

    path = shared_file(relative)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        summary = {name: (n, total) for name, n, total in con.execute(_SQL_SUMMARY)}
        con.execute(_SQL_LAUNCHES)
        con.execute(_SQL_LAUNCHES_INDEX)
        projected = {name: (n, total) for name, n, total in con.execute(_SQL_PROJECTION)}
    finally:
        con.close()
    traces = shared_traces(relative)
    stats = [s for s in range_summary(traces, max_names=None) if s.source == "nvtx"]
    assert {s.name: (s.count, s.total_ns) for s in stats} == summary
    assert {s.name: (s.gpu_kernel_count, s.gpu_time_ns) for s in stats} == projected
    assert any(n > 0 for n, _ in projected.values())
    # capped: the top names are exact, the folded row holds exactly the rest
    capped = [s for s in range_summary(traces, max_names=5) if s.source == "nvtx"]
    top = sorted(summary.items(), key=lambda item: -item[1][1])
    kept = [s for s in capped if not s.name.startswith("other (")]
    folded = [s for s in capped if s.name.startswith("other (")]
    assert {s.name: (s.count, s.total_ns) for s in kept} == {
        name: figures for name, figures in top[: len(kept)]
    }
    assert len(kept) == 5 and folded  # one folded row per NVTX domain with leftover names
    rest = [name for name in summary if name not in {s.name for s in kept}]
    assert sum(int(s.name.split("(")[1].split()[0].replace(",", "")) for s in folded) == len(rest)
    assert sum(s.count for s in folded) == sum(summary[name][0] for name in rest)
    assert sum(s.total_ns for s in folded) == sum(summary[name][1] for name in rest)
    assert sum(s.gpu_time_ns or 0 for s in folded) == sum(projected[name][1] for name in rest)


def _cpu_trace() -> Trace:
    """CPU capture: thread 1 runs ops [0,10) [20,40) [50,60); thread 2 runs [25,35).
    Range 'step' on thread 1 spans [5, 55): it is charged with thread 1's ops only, clipped."""
    t = Trace(source="cpu.json", format="kineto", device_kind="cpu")
    t.kernels = make_table(
        KERNEL_COLUMNS,
        {
            "device": [0, 0, 0, 0],
            "stream": [1, 1, 1, 2],
            "start": [0, 20, 50, 25],
            "end": [10, 40, 60, 35],
            "name": ["aten::mm", "aten::mm", "aten::add", "aten::mm"],
        },
    )
    t.ranges = make_table(
        RANGE_COLUMNS,
        {"thread": [1], "start": [5], "end": [55], "name": ["step"], "source": ["user_annotation"]},
    )
    return t


def test_cpu_capture_projects_host_ranges_onto_their_threads_ops() -> None:
    (stat,) = range_summary([_cpu_trace()])
    assert stat.projection_na_reason is None
    assert stat.gpu_kernel_count == 3  # the three thread-1 ops overlap [5, 55)
    assert stat.gpu_time_ns == 5 + 20 + 5  # clipped to the range
    assert stat.gpu_busy_ns == 30


def test_cpu_demo_prefill_projection_matches_plain_json() -> None:
    """On the bundled CPU capture, the prefill range is charged with (almost) all the operator
    time of its thread inside it: between 90% and 100% of the union of the top-level cpu_ops
    of that thread within the range, computed here from the raw JSON."""
    import gzip
    import json
    from pathlib import Path

    from infersight.ingest import load_traces

    demo = Path(__file__).resolve().parents[2] / "src/infersight/data/demo/tiny_llama_cpu.pt.trace.json.gz"
    with gzip.open(demo, "rb") as fh:
        events = json.load(fh)["traceEvents"]
    (prefill,) = [e for e in events if e.get("cat") == "user_annotation" and e["name"] == "prefill"]
    lo, hi = prefill["ts"], prefill["ts"] + prefill["dur"]
    ops = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "cpu_op"
        and e["tid"] == prefill["tid"]
        and e["ts"] < hi
        and e["ts"] + e["dur"] > lo
    )
    union_us, cur_s, cur_e = 0.0, None, None
    for s, e in ops:
        s, e = max(s, lo), min(e, hi)
        if cur_e is None or s > cur_e:
            union_us += 0.0 if cur_e is None else cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    union_us += 0.0 if cur_e is None else cur_e - cur_s
    stats = {s.name: s for s in range_summary(load_traces(demo, cpu_ops_as_kernels=True))}
    busy_us = stats["prefill"].gpu_busy_ns / 1000
    assert 0.9 * union_us <= busy_us <= union_us + 1.0


@given(st.lists(st.integers(-3, 40), max_size=60))
def test_first_of_each_key_is_pandas_first_occurrence(keys: list[int]) -> None:
    """The launch table keeps the first call of each (process, correlation) key, as pandas would."""
    values = np.array(keys, dtype=np.int64)
    assert _first_of_each_key(values).tolist() == (~pd.Series(values).duplicated()).tolist()
