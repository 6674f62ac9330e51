"""Hand-built traces where the overlap is known by construction."""

from __future__ import annotations

from typing import Any

import pytest

from infersight.errors import InputError
from infersight.hardware.links import collective_spec, gpu_links
from infersight.model.trace import (
    API_COLUMNS,
    KERNEL_COLUMNS,
    MEMCPY_COLUMNS,
    RANGE_COLUMNS,
    GpuInfo,
    Trace,
    make_table,
)
from infersight.overlap import analyze_overlap, analyze_ranks
from infersight.overlap.comm import comm_overlaps
from infersight.overlap.copies import copy_overlaps, range_overlaps
from infersight.overlap.ranks import multi_rank_view

GEMM = "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_tn"
NCCL = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"


def kernels(rows: list[tuple[str, int, int, int]], device: int = 0, correlation0: int = 1) -> Any:
    """(name, stream, start, end) rows on one device."""
    return make_table(
        KERNEL_COLUMNS,
        {
            "device": [device] * len(rows),
            "stream": [r[1] for r in rows],
            "start": [r[2] for r in rows],
            "end": [r[3] for r in rows],
            "name": [r[0] for r in rows],
            "correlation": list(range(correlation0, correlation0 + len(rows))),
            "process": [0] * len(rows),
        },
    )


def copies(rows: list[tuple[str, int, int, int, str]], correlation0: int = 100) -> Any:
    """(kind, start, end, bytes, host memory kind) rows on device 0."""
    host = [r[4] for r in rows]
    return make_table(
        MEMCPY_COLUMNS,
        {
            "device": [0] * len(rows),
            "stream": [7] * len(rows),
            "start": [r[1] for r in rows],
            "end": [r[2] for r in rows],
            "bytes": [r[3] for r in rows],
            "kind": [r[0] for r in rows],
            "src_kind": [h if r[0] == "HtoD" else "device" for h, r in zip(host, rows, strict=True)],
            "dst_kind": [h if r[0] == "DtoH" else "device" for h, r in zip(host, rows, strict=True)],
            "correlation": list(range(correlation0, correlation0 + len(rows))),
            "process": [0] * len(rows),
        },
    )


def trace(name: str = "t.json", **tables: Any) -> Trace:
    t = Trace(
        source=name, format="kineto", gpus={0: GpuInfo(device=0, name="NVIDIA A100-SXM4-80GB")}, **tables
    )
    t.check_schema()
    return t


def test_fully_hidden_copy() -> None:
    t = trace(
        kernels=kernels([(GEMM, 1, 0, 1000)]),
        memcpy=copies([("HtoD", 200, 700, 10_000, "pinned")]),
    )
    (c,) = copy_overlaps(t)
    assert (c.copy_busy_ns, c.hidden_ns, c.exposed_ns) == (500, 500, 0)
    assert c.hidden_ratio == 1.0
    assert c.serial_efficiency == pytest.approx(500 / 1500)
    (d,) = c.directions
    assert d.achieved_gb_per_s == pytest.approx(10_000 / 500)  # bytes/ns = GB/s
    assert d.link is not None and d.link.id == "pcie4_x16"
    assert d.link_ratio == pytest.approx(20 / 31.5)


def test_fully_exposed_pageable_copy_is_flagged() -> None:
    t = trace(
        kernels=kernels([(GEMM, 1, 500, 1500)]),
        memcpy=copies([("HtoD", 0, 500, 4096, "pageable")]),
    )
    (c,) = copy_overlaps(t)
    assert c.window.duration_ns == 1500  # the copy before the first kernel is in the window
    assert (c.hidden_ns, c.exposed_ns) == (0, 500)
    assert c.exposed_ratio == pytest.approx(500 / 1500)
    assert c.serial_efficiency == 0.0
    report = analyze_overlap([t])
    types = {f.type for f in report.findings}
    assert {"pageable_copies", "exposed_copies"} <= types


def test_half_overlapped_nccl() -> None:
    t = trace(kernels=kernels([(NCCL, 2, 0, 1000), (GEMM, 1, 500, 1500)]))
    (c,) = comm_overlaps(t)
    assert (c.comm_time_ns, c.overlapped_ns, c.exposed_ns) == (1000, 500, 500)
    assert c.overlap_ratio == 0.5
    assert c.m5_nccl_ratio == pytest.approx(1000 / 1500)
    (s,) = c.collectives
    assert (s.collective, s.algorithm, s.protocol) == ("AllReduce", "RING", "LL")
    assert s.busbw_gb_per_s is None and s.size_na_reason  # a synthetic file cannot be re-read: N/A
    types = {f.type for f in analyze_overlap([t]).findings}
    assert "nccl_ratio" in types and "exposed_comm" not in types  # half overlapped: not < 50%
    quarter = trace(kernels=kernels([(NCCL, 2, 0, 1000), (GEMM, 1, 750, 1750)]))
    assert "exposed_comm" in {f.type for f in analyze_overlap([quarter]).findings}


def test_window_nvtx_cuts_the_copy_window() -> None:
    steady = make_table(
        RANGE_COLUMNS,
        {"process": [0], "thread": [1], "start": [1000], "end": [2000], "name": ["steady_step"],
         "source": ["user_annotation"], "device": [-1]},
    )  # fmt: skip
    t = trace(
        kernels=kernels([(GEMM, 1, 0, 3000)]),
        memcpy=copies([("HtoD", 0, 500, 1000, "pinned"), ("DtoH", 1500, 2500, 1000, "pinned")]),
        ranges=steady,
    )
    (c,) = copy_overlaps(t, window_nvtx="steady")
    assert c.window.intervals_ns == [(1000, 2000)]
    assert [d.direction for d in c.directions] == ["DtoH"]  # the HtoD copy is before the window
    assert (c.copy_busy_ns, c.hidden_ns) == (500, 500)  # clipped to the window, under the kernel
    assert c.directions[0].time_ns == 1000  # bandwidth uses the whole copy


def test_no_copies_is_not_applicable() -> None:
    t = trace(kernels=kernels([(GEMM, 1, 0, 1000)]))
    (c,) = copy_overlaps(t)
    assert c.hidden_ratio is None and c.na_reason
    assert any("no copy events" in n for n in analyze_overlap([t]).notes)


def streaming_loop(prefetch: bool) -> Trace:
    """Two layers: each loads 900 ns of weights and computes 100 ns.

    Without prefetch the load of layer i runs, then its compute (serial, with a 50 ns gap);
    with prefetch the load of layer i+1 is issued in layer i and runs under its compute.
    """
    ranges = make_table(
        RANGE_COLUMNS,
        {
            "process": [0, 0],
            "thread": [5, 5],
            "start": [0, 1000],
            "end": [1000, 2000],
            "name": ["layer_0", "layer_1"],
            "source": ["user_annotation"] * 2,
            "device": [-1, -1],
        },
    )
    if prefetch:  # layer_0 issues its own load, its compute, and the prefetch of layer_1's weights
        copy_rows = [("HtoD", 0, 900, 9_000_000, "pinned"), ("HtoD", 950, 1850, 9_000_000, "pinned")]
        kernel_rows = [(GEMM, 1, 900, 1800), (GEMM, 1, 1850, 2750)]
        call_starts = [10, 20, 30, 1010]
        call_correlations = [100, 1, 101, 2]
    else:
        copy_rows = [("HtoD", 0, 900, 9_000_000, "pageable"), ("HtoD", 1100, 2000, 9_000_000, "pageable")]
        kernel_rows = [(GEMM, 1, 950, 1050), (GEMM, 1, 2050, 2150)]
        call_starts = [10, 20, 1010, 1020]
        call_correlations = [100, 1, 101, 2]
    api = make_table(
        API_COLUMNS,
        {
            "process": [0] * 4,
            "thread": [5] * 4,
            "start": call_starts,
            "end": [s + 5 for s in call_starts],
            "name": ["cudaMemcpyAsync" if c >= 100 else "cudaLaunchKernel" for c in call_correlations],
            "correlation": call_correlations,
            "source": ["runtime"] * 4,
        },
    )
    return trace(kernels=kernels(kernel_rows), memcpy=copies(copy_rows), api=api, ranges=ranges)


def test_per_range_streaming_without_prefetch_is_negative() -> None:
    rows = range_overlaps(streaming_loop(prefetch=False), r"layer_\d")
    assert [r.name for r in rows] == ["layer_0", "layer_1"]
    first = rows[0]
    assert (first.copy_ns, first.compute_ns, first.hidden_ns, first.actual_ns) == (900, 100, 0, 1050)
    assert first.load_compute_ratio == pytest.approx(9.0)
    assert first.serial_efficiency == pytest.approx((1000 - 1050) / 1000)
    report = analyze_overlap([streaming_loop(prefetch=False)], per_range=r"layer_\d")
    assert any(f.type == "prefetch_not_hiding" for f in report.findings)


def test_per_range_with_prefetch_hides_the_load() -> None:
    rows = range_overlaps(streaming_loop(prefetch=True), r"layer_\d")
    first = rows[0]  # the prefetch (950-1850) runs under layer_0's compute (900-1800): 850 ns hidden
    assert (first.copy_ns, first.compute_ns, first.hidden_ns, first.actual_ns) == (1800, 900, 850, 1850)
    assert first.serial_efficiency == pytest.approx((2700 - 1850) / 2700)


def test_per_range_regex_errors() -> None:
    with pytest.raises(InputError, match="matches no"):
        range_overlaps(streaming_loop(prefetch=True), "nothing_like_this")
    with pytest.raises(InputError, match="not a valid regex"):
        range_overlaps(streaming_loop(prefetch=True), "(")


def rank_trace(rank: int, offset: int, late: int, world: int = 2, step: int | None = None) -> Trace:
    """Three all-reduces ending at 1000, 3000, 5000 (true clock); this rank starts them ``late``
    ns after 500/2500/4500; its clock reads true time + offset."""
    rows = [(NCCL, 2, s + late + offset, e + offset) for s, e in ((500, 1000), (2500, 3000), (4500, 5000))]
    rows.append((GEMM, 1, offset, 400 + offset))
    t = trace(f"rank-{rank}.json", kernels=kernels(rows, device=0))
    t.rank = rank
    t.metadata["distributedInfo.world_size"] = str(world)
    if step is not None:
        t.ranges = make_table(
            RANGE_COLUMNS,
            {
                "process": [0],
                "thread": [1],
                "start": [offset],
                "end": [offset + step],
                "name": ["ProfilerStep#1"],
                "source": ["user_annotation"],
                "device": [-1],
            },
        )
    return t


def test_ranks_alignment_waits_and_straggler() -> None:
    view = multi_rank_view([rank_trace(0, 0, 0), rank_trace(1, 7_000_000, 300)])
    offsets = {r.rank: r.clock_offset_ns for r in view.ranks}
    assert offsets == {0: 0, 1: -7_000_000}
    waits = {r.rank: r.wait_ns for r in view.ranks}
    assert waits == {0: 900, 1: 0}  # rank 0 waits 300 ns at each of the 3 collectives
    assert view.straggler_rank == 1 and not view.waits_rough
    report = analyze_ranks([rank_trace(0, 0, 0), rank_trace(1, 7_000_000, 300)])
    assert any(f.type == "straggler" and f.location.rank == 1 for f in report.findings)


def test_ranks_bad_input() -> None:
    with pytest.raises(InputError, match="appears twice"):
        multi_rank_view([rank_trace(0, 0, 0), rank_trace(0, 0, 0)])
    with pytest.raises(InputError, match="at least two ranks"):
        multi_rank_view([rank_trace(0, 0, 0)])
    view = multi_rank_view([rank_trace(0, 0, 0, world=4), rank_trace(2, 0, 0, world=4)])
    assert view.missing_ranks == [1, 3]
    assert any("missing: 1, 3" in n for n in view.notes)
    unranked = rank_trace(1, 0, 0)
    unranked.rank = None
    with pytest.raises(InputError, match="no rank"):
        multi_rank_view([rank_trace(0, 0, 0), unranked])


def test_clock_offset_larger_than_step_is_reported() -> None:
    view = multi_rank_view([rank_trace(0, 0, 0, step=6000), rank_trace(1, 50_000, 0, step=6000)])
    assert not view.alignment_ok
    assert view.alignment_note is not None and "larger than a step" in view.alignment_note
    assert all(r.wait_ns is None for r in view.ranks)


def test_moe_imbalance_across_ranks() -> None:
    hot, cold = rank_trace(0, 0, 0), rank_trace(1, 0, 0)
    hot.kernels = make_table(
        KERNEL_COLUMNS,
        {c: [*hot.kernels[c], v] for c, v in (
            ("device", 0), ("stream", 1), ("start", 5000), ("end", 8000), ("name", "fused_moe_kernel"),
            ("correlation", 50), ("process", 0))},
    )  # fmt: skip
    cold.kernels = make_table(
        KERNEL_COLUMNS,
        {c: [*cold.kernels[c], v] for c, v in (
            ("device", 0), ("stream", 1), ("start", 5000), ("end", 6000), ("name", "fused_moe_kernel"),
            ("correlation", 50), ("process", 0))},
    )  # fmt: skip
    report = analyze_ranks([hot, cold])
    assert report.multi_rank is not None
    assert [r.moe_kernel_ns for r in report.multi_rank.ranks] == [3000, 1000]
    (finding,) = [f for f in report.findings if f.type == "moe_imbalance"]
    assert finding.location.rank == 0
    assert finding.evidence[0].value == pytest.approx(3000 / 2000)


@pytest.mark.parametrize(
    ("gpu", "host", "peer"),
    [
        ("NVIDIA H100 80GB HBM3", "pcie5_x16", "nvlink4_h100"),
        ("NVIDIA H100 PCIe", "pcie5_x16", "nvlink4_bridge"),
        ("NVIDIA H200", "pcie5_x16", "nvlink4_h100"),
        ("NVIDIA B200", "pcie5_x16", "nvlink5_b200"),
        ("NVIDIA A100-PG509-200", "pcie4_x16", "nvlink3_a100"),
        ("NVIDIA L4", "pcie4_x16", None),
        ("NVIDIA L40S", "pcie4_x16", None),
        ("Tesla T4", "pcie3_x16", None),
        ("NVIDIA GeForce RTX 4060 Ti", "pcie4_x8", None),
    ],
)
def test_gpu_links(gpu: str, host: str, peer: str | None) -> None:
    links = gpu_links(gpu)
    assert links.host is not None and links.host.id == host
    assert (links.peer.id if links.peer else None) == peer


def test_unknown_gpu_links_say_why() -> None:
    assert gpu_links("Some Future GPU").na_reason
    assert gpu_links(None).na_reason


@pytest.mark.parametrize(
    ("collective", "ranks", "factor"),
    [("AllReduce", 8, 2 * 7 / 8), ("AllGather", 4, 3 / 4), ("ReduceScatter", 2, 1 / 2),
     ("AllToAll", 8, 7 / 8), ("Broadcast", 8, 1.0), ("SendRecv", 2, 1.0)],
)  # fmt: skip
def test_bus_bandwidth_factors_follow_nccl_tests(collective: str, ranks: int, factor: float) -> None:
    spec = collective_spec(collective)
    assert spec is not None and spec.factor(ranks) == pytest.approx(factor)
