"""build_global_profile on every real trace, cross-checked against plain json/SQL computations."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from tests.conftest import plain_json_events, shared_file, shared_report, shared_traces

from infersight.analyses.profile import build_global_profile
from infersight.errors import InputError
from infersight.model import Trace

KINETO_WITH_KERNELS = [
    "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz",
    "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz",
    "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz",
    "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz",
    "kineto/tracelens_vllm_eager_b200_rank0.json.gz",
    "kineto/hta_trace_diff_control_a100_rank3.json.gz",
    "kineto/hta_trace_diff_test_v100_rank1.json.gz",
    "kineto/hta_ns_resolution_v100_rank0.pt.trace.json.gz",
    "kineto/hta_nccl_a100_rank0.json.gz",
    "kineto/hta_sampled_128ranks/rank-0.json.gz",
    "kineto/hta_alexnet_a100.json.gz",
    "kineto/hta_event_sync_multi_stream_a100.json.gz",
    "kineto/hta_triton_example_a100.json.gz",
    "kineto/hta_mi250_minitoy.json.gz",
]
NSYS_WITH_KERNELS = [
    "nsys/vecadd_t4_nsys2022.sqlite",
    "nsys/vectoradd_a4500_memcpy.sqlite",
    "nsys/saxpy_mpi_a100_nvtx_oldschema.sqlite",
    "nsys/h100x2_llm_train_nsys2026.sqlite",
    "nsys/concurrent_streams_nsys2022.sqlite",
    "nsys/tensorrt_conv_rtx3090.sqlite",
]


def _plain_union_length(intervals: list[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


def _plain_idle_ratio(per_device: dict[object, list[tuple[float, float]]]) -> float:
    """Σ idle / Σ wall over devices, each device from its first kernel start to its last end."""
    wall = sum(max(e for _, e in iv) - min(s for s, _ in iv) for iv in per_device.values())
    busy = sum(_plain_union_length(iv) for iv in per_device.values())
    return 1.0 - busy / wall


def _kineto_kernels(path: Path) -> tuple[dict[object, list[tuple[float, float]]], int]:
    """Kernel intervals (µs) per device, and Σ durations in ns as the trace model defines them
    (each ``round(dur_us * 1000)``, summed from ``dur`` so large ``ts`` values lose nothing)."""
    events = plain_json_events(path)
    per_device: dict[object, list[tuple[float, float]]] = defaultdict(list)
    total_ns = 0
    for e in events:
        if e.get("cat") == "kernel" and e.get("ph") == "X":
            per_device[e.get("args", {}).get("device", e.get("pid"))].append((e["ts"], e["ts"] + e["dur"]))
            total_ns += round(e["dur"] * 1000)
    return per_device, total_ns


@pytest.mark.parametrize("relative", KINETO_WITH_KERNELS)
def test_kineto_profile_matches_plain_json(relative: str) -> None:
    path = shared_file(relative)
    per_device, kernel_ns = _kineto_kernels(path)
    count = sum(len(v) for v in per_device.values())
    profile = shared_report(relative).profile
    total = profile.total
    assert total.kernel_count == count
    assert total.kernel_time_ns == kernel_ns
    assert sum(k.count for k in profile.kernels) == count
    assert sum(c.total_ns for c in profile.categories) == sum(k.total_ns for k in profile.kernels)
    assert len(profile.devices) == len(per_device)
    assert total.idle_ratio == pytest.approx(_plain_idle_ratio(per_device), abs=0.005)


def test_index_idle_ratios() -> None:
    """The figures INDEX.md states (computed independently when the data was collected)."""
    sglang = build_global_profile(
        shared_traces("kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz")
    )
    assert sglang.total.idle_ratio == pytest.approx(0.5009, abs=0.0005)


def _sql_kernels(path: Path) -> dict[object, list[tuple[float, float]]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute('SELECT deviceId, start, "end" FROM CUPTI_ACTIVITY_KIND_KERNEL').fetchall()
    finally:
        con.close()
    per_device: dict[object, list[tuple[float, float]]] = defaultdict(list)
    for device, s, e in rows:
        per_device[device].append((s, e))
    return per_device


@pytest.mark.parametrize("relative", NSYS_WITH_KERNELS)
def test_nsys_profile_matches_plain_sql(relative: str) -> None:
    path = shared_file(relative)
    per_device = _sql_kernels(path)
    profile = shared_report(relative).profile
    assert profile.total.kernel_count == sum(len(v) for v in per_device.values())
    assert profile.total.kernel_time_ns == sum(e - s for v in per_device.values() for s, e in v)
    assert len(profile.devices) == len(per_device)
    assert profile.total.idle_ratio == pytest.approx(_plain_idle_ratio(per_device), abs=0.005)


def test_nsys_launch_overhead_matches_plain_sql() -> None:
    """η_launch of the TensorRT trace: launch calls (name stem, version suffix stripped)."""
    path = shared_file("nsys/tensorrt_conv_rtx3090.sqlite")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (first, last) = con.execute(
            'SELECT MIN(start), MAX("end") FROM CUPTI_ACTIVITY_KIND_KERNEL'
        ).fetchone()
        launch_ns = con.execute(
            """SELECT SUM(MIN(r."end", ?) - MAX(r.start, ?)) FROM CUPTI_ACTIVITY_KIND_RUNTIME r
               JOIN StringIds s ON s.id = r.nameId
               WHERE (s.value LIKE 'cudaLaunchKernel%' OR s.value LIKE 'cuLaunchKernel%'
                      OR s.value LIKE 'cudaGraphLaunch%')
                 AND r."end" > ? AND r.start < ?""",
            (last, first, first, last),
        ).fetchone()[0]
    finally:
        con.close()
    profile = shared_report("nsys/tensorrt_conv_rtx3090.sqlite").profile
    assert profile.total.launch_api_ns == launch_ns
    assert profile.total.launch_overhead_ratio == pytest.approx(launch_ns / (last - first))


def test_biggest_trace_profiles_every_kernel() -> None:
    """The biggest shared Kineto trace (its speed is measured in bench/, not in a timed unit test)."""
    profile = build_global_profile(shared_traces(KINETO_WITH_KERNELS[0]))
    assert profile.total.kernel_count == 13508


def test_window_regex_on_real_trace() -> None:
    sglang = "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz"
    profile = build_global_profile(shared_traces(sglang), window_nvtx=r"step\[EXTEND")
    (device,) = profile.devices
    assert device.window.source == r"nvtx:step\[EXTEND"
    assert len(device.window.intervals_ns) == 1
    assert device.wall_ns <= 28_915_862  # the EXTEND range lasts 28,915.862 µs
    assert device.kernel_count < 527
    with pytest.raises(InputError, match="matches no NVTX/annotation range"):
        build_global_profile(
            shared_traces(sglang),
            window_nvtx="^no such range$",
        )


def test_trace_without_kernels_is_a_clear_input_error() -> None:
    with pytest.raises(InputError, match="no GPU kernels"):
        build_global_profile([Trace(source="empty.json", format="kineto")])
