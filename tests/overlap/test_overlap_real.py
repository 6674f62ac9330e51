"""Overlap analyses on the real traces of ../shared/data, against interval arithmetic written here.

The reference numbers come from plain Python over the raw files (json for Kineto, SQL for nsys):
sort + merge for unions, a two-pointer sweep for intersections. Nothing of infersight's interval
code or readers is used to compute them.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import plain_json, shared_file
from tests.interval_oracle import Interval, length, overlap

from infersight.api import load
from infersight.model import Trace
from infersight.overlap import analyze_overlap
from infersight.overlap.comm import comm_overlaps
from infersight.overlap.copies import copy_overlaps, range_overlaps
from infersight.overlap.ranks import multi_rank_view

COMM_NAME = re.compile(r"nccl|multimem_all_reduce|cross_device_reduce", re.IGNORECASE)


# ---------------------------------------------------------------- independent interval arithmetic


def clip(intervals: list[Interval], window: Interval) -> list[Interval]:
    return [(max(s, window[0]), min(e, window[1])) for s, e in intervals if e > window[0] and s < window[1]]


# ---------------------------------------------------------------- raw readers


@functools.cache
def kineto_events(path: Path) -> list[dict[str, Any]]:
    """The trace's events (cached: several tests read the same file)."""
    data = plain_json(path)  # the standard library's parser, nothing of infersight
    return [e for e in data["traceEvents"] if isinstance(e, dict)]


def ns(us: float) -> int:
    return int((Decimal(repr(us)) * 1000).to_integral_value())


def kineto_interval(event: dict[str, Any]) -> Interval:
    start = ns(event["ts"])
    return start, start + ns(event["dur"])


def kineto_kernels(events: list[dict[str, Any]], device: int) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e.get("ph") == "X"
        and e.get("cat") == "kernel"
        and e.get("args", {}).get("device", e.get("pid")) == device
    ]


def sql(path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nccl_a100() -> tuple[Path, Trace]:
    path = shared_file("kineto/hta_nccl_a100_rank0.json.gz")
    return path, load([path])[0]


@pytest.fixture(scope="module")
def control_a100() -> tuple[Path, Trace]:
    path = shared_file("kineto/hta_trace_diff_control_a100_rank3.json.gz")
    return path, load([path])[0]


@pytest.fixture(scope="module")
def h100x2() -> tuple[Path, Trace]:
    path = shared_file("nsys/h100x2_llm_train_nsys2026.sqlite")
    return path, load([path])[0]


def kineto_comm_reference(events: list[dict[str, Any]], device: int) -> dict[str, int]:
    kernels = kineto_kernels(events, device)
    comm = [kineto_interval(e) for e in kernels if COMM_NAME.search(e["name"])]
    compute = [kineto_interval(e) for e in kernels if not COMM_NAME.search(e["name"])]
    return {
        "comm_time": sum(e - s for s, e in comm),
        "comm_busy": length(comm),
        "overlapped": overlap(comm, compute),
        "active": length(comm + compute),
    }


# ---------------------------------------------------------------- comm/compute


@pytest.mark.parametrize("fixture", ["nccl_a100", "control_a100"])
def test_comm_overlap_matches_independent_kineto(fixture: str, request: pytest.FixtureRequest) -> None:
    path, trace = request.getfixturevalue(fixture)
    (result,) = [c for c in comm_overlaps(trace) if c.comm_kernel_count]
    ref = kineto_comm_reference(kineto_events(path), result.device)
    assert result.comm_time_ns == ref["comm_time"]
    assert result.comm_busy_ns == ref["comm_busy"]
    assert result.overlapped_ns == ref["overlapped"]
    assert result.exposed_ns == ref["comm_busy"] - ref["overlapped"]
    assert result.active_ns == ref["active"]
    assert result.m5_nccl_ratio == pytest.approx(ref["comm_time"] / ref["active"])


def test_nccl_sizes_and_bus_bandwidth_from_kernel_args(nccl_a100: tuple[Path, Trace]) -> None:
    path, trace = nccl_a100
    events = kineto_kernels(kineto_events(path), 0)
    allreduce = [e for e in events if "AllReduce" in e["name"]]
    size = sum(e["args"]["In msg nelems"] * 4 for e in allreduce)  # dtype Float
    time = sum(kineto_interval(e)[1] - kineto_interval(e)[0] for e in allreduce)
    (result,) = comm_overlaps(trace)
    (stat,) = [s for s in result.collectives if s.collective == "AllReduce"]
    assert (stat.algorithm, stat.protocol, stat.count) == ("RING", "LL", len(allreduce))
    assert stat.group_size == 2 and stat.busbw_factor == pytest.approx(1.0)  # 2(n-1)/n, n = 2
    assert stat.algbw_gb_per_s == pytest.approx(size / time)
    assert stat.link is not None and stat.link.id == "nvlink3_a100"
    assert stat.link_ratio == pytest.approx(size / time / 300.0)


def test_b200_multimem_allreduce_counts_as_comm_and_allgather_has_sizes() -> None:
    path = shared_file("kineto/tracelens_vllm_eager_b200_rank0.json.gz")
    (result,) = comm_overlaps(load([path])[0])
    ref = kineto_comm_reference(kineto_events(path), 0)
    assert result.comm_time_ns == ref["comm_time"]
    assert result.m5_nccl_ratio == pytest.approx(ref["comm_time"] / ref["active"])
    by_type = {s.collective: s for s in result.collectives}
    assert by_type["AllReduce"].algorithm == "custom"
    assert by_type["AllReduce"].busbw_gb_per_s is None and by_type["AllReduce"].size_na_reason
    gather = by_type["AllGather"]
    assert gather.message_bytes == 201088 * 2  # Out msg nelems × bf16
    assert gather.busbw_factor == pytest.approx(7 / 8)
    assert gather.link is not None and gather.link.id == "nvlink5_b200"


def test_nsys_two_devices_sendrecv(h100x2: tuple[Path, Trace]) -> None:
    path, trace = h100x2
    results = {c.device: c for c in comm_overlaps(trace)}
    for device in (0, 1):
        rows = sql(
            path,
            "SELECT k.start, k.end, s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k "
            f"JOIN StringIds s ON s.id = k.shortName WHERE k.deviceId = {device}",
        )
        comm = [(s, e) for s, e, name in rows if "nccl" in name.lower()]
        compute = [(s, e) for s, e, name in rows if "nccl" not in name.lower()]
        result = results[device]
        assert result.comm_time_ns == sum(e - s for s, e in comm)
        assert result.overlapped_ns == overlap(comm, compute)
        assert [s.collective for s in result.collectives] == ["SendRecv"]
        assert "nsys" in (result.collectives[0].size_na_reason or "")


# ---------------------------------------------------------------- copy/compute


def test_copies_t4_match_sql() -> None:
    path = shared_file("nsys/vecadd_t4_nsys2022.sqlite")
    (result,) = copy_overlaps(load([path])[0])
    kernels = [(s, e) for s, e in sql(path, "SELECT start, end FROM CUPTI_ACTIVITY_KIND_KERNEL")]
    copies = sql(path, "SELECT start, end, bytes, copyKind FROM CUPTI_ACTIVITY_KIND_MEMCPY")
    window = (min(s for s, *_ in copies + kernels), max(e for _, e, *_ in copies + kernels))
    assert result.window.intervals_ns == [window]
    copy_iv = [(s, e) for s, e, *_ in copies]
    assert result.copy_busy_ns == length(copy_iv)
    assert result.hidden_ns == overlap(copy_iv, kernels)
    assert result.exposed_ns == length(copy_iv) - overlap(copy_iv, kernels)
    by_dir = {d.direction: d for d in result.directions}
    htod = [(s, e, b) for s, e, b, kind in copies if kind == 1]
    assert by_dir["HtoD"].count == len(htod) and by_dir["HtoD"].bytes == sum(b for *_, b in htod)
    achieved = sum(b for *_, b in htod) / sum(e - s for s, e, _ in htod)
    assert by_dir["HtoD"].achieved_gb_per_s == pytest.approx(achieved)
    assert by_dir["HtoD"].link is not None and by_dir["HtoD"].link.id == "pcie3_x16"  # Tesla T4
    assert by_dir["HtoD"].link_ratio == pytest.approx(achieved / 15.75)
    assert by_dir["HtoD"].pageable_count == 0  # srcKind 1 = pinned


def test_unified_memory_copies_a4500() -> None:
    path = shared_file("nsys/vectoradd_a4500_memcpy.sqlite")
    (result,) = copy_overlaps(load([path])[0])
    copies = sql(path, "SELECT start, end, bytes FROM CUPTI_ACTIVITY_KIND_MEMCPY")
    kernels = [(s, e) for s, e in sql(path, "SELECT start, end FROM CUPTI_ACTIVITY_KIND_KERNEL")]
    assert result.copy_bytes == sum(b for *_, b in copies)
    assert result.copy_busy_ns == length([(s, e) for s, e, _ in copies])
    assert result.hidden_ns == overlap([(s, e) for s, e, _ in copies], kernels)


def test_copies_control_a100_pageable_and_hidden(control_a100: tuple[Path, Trace]) -> None:
    path, trace = control_a100
    events = kineto_events(path)
    (result,) = [c for c in copy_overlaps(trace) if c.device == 3]
    copies = [e for e in events if e.get("cat") == "gpu_memcpy" and e["args"].get("device") == 3]
    kernels = kineto_kernels(events, 3)
    compute = [kineto_interval(e) for e in kernels if not COMM_NAME.search(e["name"])]
    copy_iv = [kineto_interval(e) for e in copies]
    window = result.window.intervals_ns[0]
    everything = copy_iv + [kineto_interval(e) for e in kernels]
    assert window == (min(s for s, _ in everything), max(e for _, e in everything))
    assert result.copy_busy_ns == length(copy_iv)
    assert result.hidden_ns == overlap(copy_iv, compute)
    pageable = sum("Pageable" in e["name"] for e in copies)
    assert sum(d.pageable_count for d in result.directions) == pageable > 0
    assert result.directions[0].link is not None or result.directions[0].link_na_reason


def test_overlap_report_flags_pageable_copies_on_b200() -> None:
    path = shared_file("kineto/tracelens_vllm_eager_b200_rank0.json.gz")
    report = analyze_overlap(load([path]))
    (copies,) = report.copies
    by_dir = {d.direction: d for d in copies.directions}
    assert by_dir["HtoD"].pageable_count == 2
    assert by_dir["HtoD"].link is not None and by_dir["HtoD"].link.id == "pcie5_x16"


# ---------------------------------------------------------------- multi-rank


def launch_collectives(events: list[dict[str, Any]]) -> list[tuple[str, Interval]]:
    """(c10d collective annotation, kernel interval) of every NCCL kernel, in start order:
    kernel -> launch call (correlation) -> enclosing nccl:<op> annotation on the same thread."""
    calls = {
        e["args"]["correlation"]: (e["tid"], e["ts"])
        for e in events
        if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})
    }
    annotations = [
        (e["tid"], e["ts"], e["ts"] + e["dur"], e["name"][5:])
        for e in events
        if e.get("cat") == "user_annotation" and e["name"].startswith("nccl:")
    ]
    out = []
    for kernel in (e for e in events if e.get("cat") == "kernel" and "nccl" in e["name"].lower()):
        tid, ts = calls[kernel["args"]["correlation"]]
        (op,) = [name for t, s, e, name in annotations if t == tid and s <= ts <= e]
        out.append((op, kineto_interval(kernel)))
    return sorted(out, key=lambda item: item[1][0])


def test_sampled_128_ranks_view_matches_independent_alignment() -> None:
    folder = shared_file("kineto/hta_sampled_128ranks")
    view = multi_rank_view(load([folder]))
    assert [r.rank for r in view.ranks] == [0, 1]
    assert view.world_size == 128 and len(view.missing_ranks) == 126
    assert any("126 of 128 ranks have no trace" in n for n in view.notes)
    assert view.waits_rough  # a sampled trace: some waits exceed the kernel they happen in
    per_rank = {}
    for rank in (0, 1):
        events = kineto_events(folder / f"rank-{rank}.json.gz")
        ref = kineto_comm_reference(events, rank)
        row = next(r for r in view.ranks if r.rank == rank)
        assert row.comm_ns == ref["comm_time"] and row.busy_ns == ref["active"]
        ordinal: dict[str, int] = {}
        keyed = {}
        for op, interval in launch_collectives(events):
            keyed[(op, ordinal.setdefault(op, 0))] = interval
            ordinal[op] += 1
        per_rank[rank] = keyed
    common = sorted(set(per_rank[0]) & set(per_rank[1]))
    assert view.matched_collectives == len(common) > 0
    offset = int(statistics.median(per_rank[0][k][1] - per_rank[1][k][1] for k in common))
    rows = {r.rank: r for r in view.ranks}
    assert rows[1].clock_offset_ns == offset and rows[0].clock_offset_ns == 0
    starts = {r: [per_rank[r][k][0] + (offset if r == 1 else 0) for k in common] for r in (0, 1)}
    assert rows[0].wait_ns == sum(max(a, b) - a for a, b in zip(starts[0], starts[1], strict=True))
    assert rows[1].wait_ns == sum(max(a, b) - b for a, b in zip(starts[0], starts[1], strict=True))


def test_two_devices_of_one_nsys_trace_share_the_clock(h100x2: tuple[Path, Trace]) -> None:
    path, trace = h100x2
    view = multi_rank_view([trace])
    assert [r.clock_offset_ns for r in view.ranks] == [0, 0]
    assert view.alignment_method.startswith("shared clock")
    sendrecv = {
        device: sorted(
            sql(
                path,
                "SELECT k.start, k.end FROM CUPTI_ACTIVITY_KIND_KERNEL k "
                "JOIN StringIds s ON s.id = k.shortName "
                f"WHERE k.deviceId = {device} AND s.value LIKE '%nccl%'",
            )
        )
        for device in (0, 1)
    }
    assert view.matched_collectives == len(sendrecv[0]) == len(sendrecv[1])
    pairs = list(zip(sendrecv[0], sendrecv[1], strict=True))
    rows = {r.rank: r for r in view.ranks}
    assert rows[0].wait_ns == sum(max(a[0], b[0]) - a[0] for a, b in pairs)
    assert rows[1].wait_ns == sum(max(a[0], b[0]) - b[0] for a, b in pairs)
    assert rows[1].late_count == sum(b[0] > a[0] for a, b in pairs)


def test_per_range_projection_of_profiler_steps(nccl_a100: tuple[Path, Trace]) -> None:
    """Each ProfilerStep (a host range) spans its launched work on the GPU; load and compute are
    the device's copies and non-comm kernels inside that span."""
    path, trace = nccl_a100
    events = kineto_events(path)
    launches = {
        e["args"]["correlation"]: (e["tid"], ns(e["ts"]))
        for e in events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
    }
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy") and e.get("ph") == "X"]
    rows = {r.name: r for r in range_overlaps(trace, r"^ProfilerStep#\d+$")}
    steps = [e for e in events if e.get("cat") == "user_annotation" and e["name"].startswith("ProfilerStep#")]
    assert sorted(rows) == sorted(s["name"] for s in steps)
    for step in steps:
        lo, hi = kineto_interval(step)
        mine = [
            kineto_interval(e)
            for e in gpu
            if e["args"].get("correlation") in launches
            and launches[e["args"]["correlation"]][0] == step["tid"]
            and lo <= launches[e["args"]["correlation"]][1] < hi
        ]
        span = (min(s for s, _ in mine), max(e for _, e in mine))
        copies = clip([kineto_interval(e) for e in gpu if e["cat"] == "gpu_memcpy"], span)
        compute = clip(
            [kineto_interval(e) for e in gpu if e["cat"] == "kernel" and not COMM_NAME.search(e["name"])],
            span,
        )
        row = rows[step["name"]]
        assert row.instances == 1 and row.attribution == "launch"
        assert row.actual_ns == span[1] - span[0]
        assert row.copy_ns == length(copies)
        assert row.compute_ns == length(compute)
        assert row.hidden_ns == overlap(copies, compute)
