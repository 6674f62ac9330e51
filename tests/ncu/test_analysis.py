"""Roofline points and rule verdicts: hand-made fixtures (answers known by construction), real exports."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.hardware.gpu_specs import lookup_gpu
from infersight.ncu.analysis import analyze_ncu, sol_verdict
from infersight.ncu.reader import read_ncu
from infersight.ncu.results import NcuReport

DATA = Path(__file__).parent / "data"
GEMM = "nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NTN"


@pytest.fixture(scope="module")
def fixture_report() -> NcuReport:
    return analyze_ncu([read_ncu(DATA / "h100_raw_default_units.csv")])


def _statuses(report: NcuReport, kernel_index: int) -> dict[str, str]:
    prefix = f"k{kernel_index}:"
    return {c.rule: c.status for c in report.checks if c.kernel.startswith(prefix)}


def test_launches_group_into_kernels_with_medians(fixture_report: NcuReport) -> None:
    gemm, norm = fixture_report.kernels
    assert gemm.name == GEMM and gemm.launches == 3 and gemm.launch_ids == [0, 1, 2]
    assert gemm.metrics["duration_ns"] == pytest.approx(100_000.0)  # median of 100, 102, 98 µs
    assert gemm.duration_cv == pytest.approx(0.02)
    assert norm.short_name == "vllm::rms_norm_kernel" and norm.category == "norm"
    assert norm.metrics["duration_ns"] == pytest.approx(5_250.0)
    assert fixture_report.gpu_name == "NVIDIA H100 80GB HBM3" and fixture_report.gpu_name_source == "export"


def test_measured_roofline_point_against_an_independent_computation(fixture_report: NcuReport) -> None:
    point = fixture_report.kernels[0].roofline
    flops = 30e9 + (1000 + 0 + 2 * 2e6)  # tensor bf16 ops + fp32 add + mul + 2·fma
    seconds = 100e-6
    spec = lookup_gpu("NVIDIA H100 80GB HBM3")
    peak, bandwidth = spec.peak_flops("bf16"), spec.memory_bandwidth_gb_per_s * 1e9
    intensity = flops / 50e6
    upper = min(peak, intensity * bandwidth)
    assert point.flops == pytest.approx(flops)
    assert point.precision == "tensor_bf16"
    assert point.intensity == pytest.approx(intensity)
    assert point.achieved_flop_per_s == pytest.approx(flops / seconds)
    assert point.bound == "compute" and point.upper_flop_per_s == pytest.approx(upper)
    assert point.e_roof == pytest.approx(flops / seconds / upper)
    assert "fp16/fp64" in (point.flops_na_reason or "")  # those counters are not in the fixture


def test_rule_verdicts_on_the_gemm(fixture_report: NcuReport) -> None:
    statuses = _statuses(fixture_report, 0)
    assert statuses == {
        "launch_bound": "not_evaluated",  # needs the trace
        "tensor_cores_underused": "fired",  # 35% < 40% on a GEMM
        "low_occupancy": "fired",  # 12% < 30%
        "memory_bound": "passed",  # DRAM 15%
        "bank_conflicts": "passed",  # 200 / 15,000 per request
        "latency_bound_memory_dependency": "passed",  # 20% stalls
        "uncoalesced_access": "passed",  # 4 sectors per request
        "low_sm_and_memory_throughput": "fired",  # 45% and 20%
        "grid_too_small": "passed",  # 1.0 waves (measured)
        "few_blocks_per_sm": "fired",  # 132 blocks on 132 SMs (H100 spec table): < 2 per SM
        "tail_effect": "passed",  # exactly one full wave
        "block_size_not_warp_multiple": "passed",  # 384 threads
        "memory_heavier_than_compute": "passed",  # both < 60%
        "memory_saturated": "passed",
        "compute_heavier_than_memory": "passed",
        "compute_saturated": "passed",
        "theoretical_occupancy_limited": "not_evaluated",  # no Occupancy section in the fixture
        "achieved_occupancy_gap": "not_evaluated",
        "issue_slots_underused": "not_evaluated",  # no SchedulerStats
        "warp_stall_dominant": "not_evaluated",  # no per-reason stall counters
    }
    tensor = next(f for f in fixture_report.findings if f.type == "ncu_tensor_cores_underused")
    assert tensor.confidence == "high" and tensor.location.kernel == GEMM
    assert tensor.expected_gain is not None
    assert tensor.expected_gain.high == pytest.approx(1 - 35 / 70)  # capped by memory 20% -> 75%: not binding
    assert tensor.expected_gain.low == pytest.approx(1 - 35 / 40)


def test_rule_verdicts_on_the_norm(fixture_report: NcuReport) -> None:
    statuses = _statuses(fixture_report, 1)
    assert statuses["memory_bound"] == "fired"  # DRAM 85% > 80% and L2 miss 70% > 60%
    assert statuses["uncoalesced_access"] == "fired"  # 40 sectors per request
    assert (
        statuses["latency_bound_memory_dependency"] == "passed"
    )  # 70% stalls, but DRAM-bound (supporting fails)
    assert statuses["tensor_cores_underused"] == "not_applicable"  # not a GEMM
    memory = next(f for f in fixture_report.findings if f.type == "ncu_memory_bound")
    assert memory.expected_gain is not None
    assert (memory.expected_gain.low, memory.expected_gain.high) == (
        pytest.approx(0.25 * 0.85),
        pytest.approx(0.5 * 0.85),
    )
    assert memory.confidence == "high"
    assert {e.metric: e.value for e in memory.evidence}["l2_miss_pct"] == pytest.approx(70.0)


def test_missing_supporting_counter_lowers_confidence_and_names_it(tmp_path: Path) -> None:
    text = (DATA / "h100_raw_base_units.csv").read_text()
    stripped = text.replace("lts__t_sector_hit_rate.pct", "lts__t_sector_hit_rate_renamed")  # L2 hit unknown
    path = tmp_path / "no_l2.csv"
    path.write_text(stripped)
    report = analyze_ncu([read_ncu(path)])
    memory = next(f for f in report.findings if f.type == "ncu_memory_bound")
    assert memory.confidence == "medium"
    assert "l2_miss_pct" in memory.confidence_reason and "MemoryWorkloadAnalysis" in memory.confidence_reason


def test_unknown_gpu_makes_e_roof_not_applicable_with_the_reason() -> None:
    report = analyze_ncu([read_ncu(shared_file("ncu/gpt2_flashattn_ampere_oldlayout.csv"))])
    assert report.gpu_name is None and report.gpu is None  # no device name, no CC column
    point = report.kernels[0].roofline
    assert point.e_roof is None and "--gpu" in (point.e_roof_na_reason or "")
    assert "SM clock (MHz)" in (point.e_roof_na_reason or "")  # what the export does say


def test_rtx5090_e_roof_once_the_gpu_is_named_from_the_export() -> None:
    report = analyze_ncu([read_ncu(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"))])
    point = report.kernels[0].roofline
    assert report.gpu_name == "NVIDIA GeForce RTX 5090" and report.gpu_name_source == "export"
    assert point.flops == pytest.approx(335_544_320.0)  # bf16 tensor ops only
    assert point.achieved_flop_per_s == pytest.approx(335_544_320.0 / 10.34e-6)
    # independent: I = 335,544,320 / 4.74 MB; memory roof I x 1,792 GB/s < 209.5 TFLOP/s bf16 peak
    intensity = 335_544_320.0 / 4.74e6
    upper = min(209.5e12, intensity * 1792e9)
    assert point.bound == "memory" and point.e_roof == pytest.approx(335_544_320.0 / 10.34e-6 / upper)
    named = analyze_ncu(
        [read_ncu(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"))], gpu="H100"
    )
    assert named.gpu_name_source == "option"  # --gpu overrides the export
    assert named.kernels[0].roofline.peak_bytes_per_s == pytest.approx(3350e9)


def test_real_rtx5090_verdicts() -> None:
    report = analyze_ncu(
        [
            read_ncu(shared_file("ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv")),
            read_ncu(shared_file("ncu/dsocr_decode_cublas_gemv_rtx5090.details.csv")),
        ]
    )
    by_name = {k.short_name: i for i, k in enumerate(report.kernels)}
    flash = _statuses(report, by_name["flash_fwd_splitkv_kernel"])
    assert flash["low_occupancy"] == "fired"  # 8.24% achieved
    assert flash["low_sm_and_memory_throughput"] == "fired"  # SM 8.77%, memory 26%
    assert flash["memory_bound"] == "passed"
    assert flash["bank_conflicts"] == "not_evaluated"
    check = next(c for c in report.checks if c.rule == "bank_conflicts" and c.kernel.startswith("k0"))
    assert any("MemoryWorkloadAnalysis_Tables" in hint for hint in check.missing)
    for kernel in report.kernels:
        assert (kernel.sol_verdict or "").startswith("latency-bound (grid too small")
        assert kernel.ncu_rules[0].name == "SOLBottleneck"
    low_occ = [f for f in report.findings if f.type == "ncu_low_occupancy"]
    assert all(f.confidence == "medium" and "one profiled launch" in f.confidence_reason for f in low_occ)


def test_real_ampere_bank_conflicts_match_the_counters() -> None:
    path = shared_file("ncu/gpt2_flashattn_ampere_oldlayout.csv")
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["ID"] == "8"]
    wanted = ("l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum", "sass__inst_executed_shared_loads",
              "sass__inst_executed_shared_stores")  # fmt: skip
    value = {
        r["Metric Name"]: float(r["Metric Value"].replace(",", ""))
        for r in rows
        if r["Metric Name"] in wanted
    }
    conflicts = value["l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum"]
    requests = value["sass__inst_executed_shared_loads"] + value["sass__inst_executed_shared_stores"]
    report = analyze_ncu([read_ncu(path)])
    index, kernel = next((i, k) for i, k in enumerate(report.kernels) if k.launch_ids == [8])
    assert kernel.metrics["bank_conflicts_per_request"] == pytest.approx(conflicts / requests)
    expected = "fired" if conflicts / requests > 2 else "passed"
    assert _statuses(report, index)["bank_conflicts"] == expected == "fired"
    # kernels without any shared-memory access: the rule does not apply (not "missing counters")
    arange = next(i for i, k in enumerate(report.kernels) if k.launch_ids == [6])
    assert _statuses(report, arange)["bank_conflicts"] == "not_applicable"
    # tensor-core work without tensor-FLOP counters: FLOP/s is flagged as a lower bound
    gemm = next(k for k in report.kernels if k.launch_ids == [5])
    assert "55,296 tensor-pipe instructions" in (gemm.roofline.flops_na_reason or "")


@pytest.mark.parametrize(
    ("sm", "memory", "waves", "verdict"),
    [(8.8, 26.0, 0.5, "latency-bound (grid too small: 0.50 waves)"), (8.8, 26.0, None, "latency-bound"),
     (85.0, 30.0, 4.0, "compute-bound; SM at >= 80%: move work to a less-used unit"),
     (30.0, 70.0, 4.0, "memory-bound"), (65.0, 70.0, 4.0, "balanced"), (None, 70.0, 1.0, None)],
)  # fmt: skip
def test_speed_of_light_verdict(
    sm: float | None, memory: float | None, waves: float | None, verdict: str | None
) -> None:
    assert sol_verdict(sm, memory, waves) == verdict
