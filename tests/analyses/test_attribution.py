"""Wall-time attribution checked against an independent computation on every real trace.

nsys: plain SQL over the export (kernel, memcpy and memset rows per device); Kineto: plain Python
over the JSON events. Both go through the naive interval oracle, never through
``infersight.analyses.intervals``. The kernel *classification* (is it a collective?) is the
product's category table, named by the same kernel names: what is checked here is the interval
arithmetic, the windows and the bucket priorities.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from tests.conftest import KINETO_DIR, NSYS_DIR, plain_json_events, shared_file, shared_report, trace_sweep
from tests.interval_oracle import Interval, length

from infersight import api
from infersight.analyses.categories import categorize_name
from infersight.analyses.profile import build_global_profile
from infersight.analyses.results import GlobalProfile

TOLERANCE = 0.01
NSYS_WITH_KERNELS = [
    "nsys/vecadd_t4_nsys2022.sqlite",
    "nsys/vectoradd_a4500_memcpy.sqlite",
    "nsys/saxpy_mpi_a100_nvtx_oldschema.sqlite",
    "nsys/h100x2_llm_train_nsys2026.sqlite",
    "nsys/concurrent_streams_nsys2022.sqlite",
    "nsys/ex_gpu_nsys2021_no_metadata.sqlite",
    "nsys/tensorrt_conv_rtx3090.sqlite",
]
KINETO_WITH_KERNELS = [
    "kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz",
    "kineto/tracelens_vllm_gptoss_prefilldecode_piecewise_graph_mi300x.json.gz",
    "kineto/tracelens_qwen1.5-0.5b-chat_h100.json.gz",
    "kineto/tracelens_vllm_eager_b200_rank0.json.gz",
    "kineto/hta_trace_diff_control_a100_rank3.json.gz",
    "kineto/hta_trace_diff_test_v100_rank1.json.gz",
    "kineto/hta_ns_resolution_v100_rank0.pt.trace.json.gz",
    "kineto/hta_nccl_a100_rank0.json.gz",
    "kineto/hta_alexnet_a100.json.gz",
    "kineto/hta_event_sync_multi_stream_a100.json.gz",
    "kineto/hta_triton_example_a100.json.gz",
    "kineto/hta_mi250_minitoy.json.gz",
    "kineto/vllm_llama70b-class_tp4_h100_rank0_prefill1_decode9.pt.trace.json.gz",
]


@functools.cache
def _is_collective(name: str) -> bool:
    """The product's category of a kernel name, asked once per distinct name (a trace repeats a
    few hundred names over thousands of kernels; the category depends on the name alone)."""
    return categorize_name(name) == "NCCL"


class DeviceWork:
    """One device's intervals by kind, as the oracle sees them."""

    def __init__(self) -> None:
        self.compute: list[Interval] = []
        self.comm: list[Interval] = []
        self.copies: list[Interval] = []

    def add_kernel(self, name: str, start: int, end: int) -> None:
        (self.comm if _is_collective(name) else self.compute).append((start, end))

    def shares(self) -> dict[str, float]:
        everything = self.compute + self.comm + self.copies
        w0 = min(s for s, _ in everything)
        w1 = max(e for _, e in everything)
        window = w1 - w0
        gpu = length(self.compute)
        with_comm = length(self.compute + self.comm)
        busy = length(everything)
        times = {
            "gpu": gpu,
            "communication": with_comm - gpu,
            "copy": busy - with_comm,
            "host": window - busy,
        }
        return {k: v / window for k, v in times.items()}


def _nsys_oracle(path: Path) -> dict[int, dict[str, float]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    columns = {c[1] for c in con.execute("PRAGMA table_info(CUPTI_ACTIVITY_KIND_KERNEL)")}
    name_col = next(c for c in ("demangledName", "shortName", "mangledName") if c in columns)
    work: dict[int, DeviceWork] = defaultdict(DeviceWork)
    query = (
        f"SELECT k.deviceId, k.start, k.end, s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k "
        f"JOIN StringIds s ON s.id = k.{name_col}"
    )
    for device, start, end, name in con.execute(query):
        work[device].add_kernel(name, start, end)
    for table in ("CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET"):
        if table in tables:
            for device, start, end in con.execute(f"SELECT deviceId, start, end FROM {table}"):
                work[device].copies.append((start, end))
    return {device: w.shares() for device, w in work.items()}


def _kineto_oracle(path: Path) -> dict[int, dict[str, float]]:
    events = plain_json_events(path)
    work: dict[int, DeviceWork] = defaultdict(DeviceWork)
    for e in events:
        if e.get("ph") != "X" or e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        start = round(float(e["ts"]) * 1000)
        end = start + round(float(e.get("dur", 0)) * 1000)
        device = int(e.get("args", {}).get("device", e.get("pid", 0)))
        if e["cat"] == "kernel":
            work[device].add_kernel(str(e.get("name", "")), start, end)
        else:
            work[device].copies.append((start, end))
    return {device: w.shares() for device, w in work.items() if w.compute or w.comm}


def _profile(relative: str) -> GlobalProfile:
    """The profile of a shared trace (computed once per test run, shared with other modules)."""
    return shared_report(relative).profile


def _assert_agrees(profile: GlobalProfile, oracle: dict[int, dict[str, float]]) -> None:
    ours = {a.device: a for a in profile.time_attribution}
    assert set(oracle) <= set(ours)
    for device, expected in oracle.items():
        got = ours[device].shares.model_dump()
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)
        for bucket, share in expected.items():
            assert got[bucket] == pytest.approx(share, abs=TOLERANCE), (device, bucket)


@pytest.mark.parametrize("relative", NSYS_WITH_KERNELS)
def test_nsys_attribution_agrees_with_plain_sql(relative: str) -> None:
    path = shared_file(relative)
    _assert_agrees(_profile(relative), _nsys_oracle(path))


# a sweep that parses every file again in plain Python: the files above QUICK_SWEEP_BYTES in CI only
@pytest.mark.parametrize("relative", trace_sweep(KINETO_WITH_KERNELS, folder=KINETO_DIR.parent))
def test_kineto_attribution_agrees_with_plain_python(relative: str) -> None:
    path = shared_file(relative)
    _assert_agrees(_profile(relative), _kineto_oracle(path))


def test_every_shared_trace_is_covered() -> None:
    """A trace added to ../shared/data must be added to the agreement lists above."""
    shared_file(NSYS_WITH_KERNELS[0])
    listed = {Path(p).name for p in NSYS_WITH_KERNELS + KINETO_WITH_KERNELS}
    without_kernels = {"gemm_rtx5060ti_no_kernel_table.sqlite", "hta_cpu_only_no_gpu.json.gz"}
    present = {p.name for p in NSYS_DIR.glob("*.sqlite")} | {p.name for p in KINETO_DIR.glob("*.json.gz")}
    assert present - without_kernels <= listed


# ---------------------------------------------------------------- verdicts an engineer would name


def test_copy_run_is_copy_bound_and_names_the_direction() -> None:
    profile = _profile("nsys/vecadd_t4_nsys2022.sqlite")
    verdict = profile.primary_bottleneck
    assert verdict is not None and verdict.bucket == "copy" and verdict.confidence == "high"
    assert "host-to-device copies" in verdict.headline
    (device,) = profile.time_attribution
    htod = next(c for c in device.copy_directions if c.direction == "HtoD")
    assert htod.link_ratio is not None and 0.5 < htod.link_ratio < 1.0  # ~11 GB/s on PCIe Gen3 x16
    # the kernel window (96 µs) would cut 11 of the 12 copies: they are reported, not dropped
    assert device.outside_kernel_window.copies == 11


def test_vllm_tp4_decode_is_gpu_bound_with_communication_second_tier() -> None:
    profile = _profile(KINETO_WITH_KERNELS[-1])  # the vLLM TP4 H100 trace
    verdict = profile.primary_bottleneck
    assert verdict is not None and verdict.bucket == "gpu" and verdict.confidence == "high"
    assert 0.05 < verdict.shares.communication < 0.15  # ~9% collective-only time
    (device,) = profile.time_attribution
    assert {p.phase for p in device.phases} == {"prefill", "decode"}
    assert len(device.steps) == 10
    # the kernel-window idle stays the HTA-comparable figure
    kernel_window_idle = device.outside_kernel_window.kernel_window_idle_ratio
    assert kernel_window_idle == pytest.approx(profile.devices[0].idle_ratio)


def test_sglang_near_tie_is_low_confidence() -> None:
    profile = _profile("kineto/tracelens_sglang_qwen3-8b_prefilldecode_mi300x.json.gz")
    verdict = profile.primary_bottleneck
    assert verdict is not None and {verdict.bucket, verdict.second} == {"gpu", "host"}
    assert verdict.margin < 0.05 and verdict.confidence == "low"
    assert "near tie" in verdict.confidence_reason


def test_unified_memory_copies_keep_their_direction() -> None:
    profile = _profile("nsys/vectoradd_a4500_memcpy.sqlite")
    (device,) = profile.time_attribution
    directions = {c.direction: c.count for c in device.copy_directions}
    assert directions == {"UVM HtoD": 155, "UVM DtoH": 72}


def test_nccl_kernels_are_communication_not_gpu() -> None:
    profile = _profile("nsys/h100x2_llm_train_nsys2026.sqlite")
    assert len(profile.time_attribution) == 2
    for device in profile.time_attribution:
        assert device.shares.communication > 0.01
        assert any("SendRecv" in c.collective for c in device.collectives)


def test_multi_rank_digest_path_carries_the_same_attribution() -> None:
    folder = shared_file("kineto/hta_sampled_128ranks")
    traces = api.load([folder], executor="local")
    direct = build_global_profile(traces)
    merged = api.analyze([folder], executor="local").profile
    assert merged.time_attribution == direct.time_attribution
    assert merged.primary_bottleneck == direct.primary_bottleneck


def test_range_totals_by_code_match_a_pandas_groupby() -> None:
    """The host-range totals (numpy on category codes) equal pandas' groupby + stable sort.

    Ties (many equal sums) must keep the order in which the (name, source) pairs first occur,
    and rows with a missing name are left out, as ``groupby(observed=True, sort=False)`` does.
    """
    import numpy as np
    import pandas as pd

    from infersight.analyses.attribution import _totals_by_name, largest_first
    from infersight.analyses.range_names import RangeNames
    from infersight.model.emit_nvtx import split_names

    rng = np.random.default_rng(7)
    for round_ in range(50):
        n, names_n, sources_n = int(rng.integers(1, 400)), int(rng.integers(1, 30)), int(rng.integers(1, 4))
        distinct = [f"r{i % 3}, op_id = {i}" if round_ % 2 else f"r{i}" for i in range(names_n)]
        names = pd.Categorical.from_codes(rng.integers(-1, names_n, n), categories=distinct)
        sources = pd.Categorical.from_codes(
            rng.integers(0, sources_n, n), categories=[f"s{i}" for i in range(sources_n)]
        )
        ns = rng.integers(0, 4, n) * 1_000
        expected = (
            pd.DataFrame({"name": names, "source": sources, "ns": ns})
            .groupby(["name", "source"], observed=True, sort=False)["ns"]
            .sum()
            .sort_values(ascending=False, kind="stable")
        )
        # the names as they are, and split into emit_nvtx forms and numbers (a compact table)
        parts = split_names(list(distinct))
        form_of, forms = pd.factorize(np.asarray(parts.forms, dtype=object))
        codes = names.codes.astype(np.int64)
        compact = RangeNames(
            pd.Categorical.from_codes(np.where(codes >= 0, form_of[codes], -1), categories=forms),
            tuple(np.where(codes >= 0, values[codes], -1) for values in parts.numbers),
        )
        top = int(rng.integers(1, 8))
        for ranges in (RangeNames(names), compact):
            rows, source_codes, totals = _totals_by_name(ranges, sources.codes, ns)
            got = [
                (ranges.label_of_row(int(rows[i])), sources.categories[source_codes[i]], int(totals[i]))
                for i in largest_first(totals, first=top)
            ]
            assert got == [(str(a), str(b), int(t)) for (a, b), t in expected.items()]
