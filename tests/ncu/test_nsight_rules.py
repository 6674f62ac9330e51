"""infersight's findings against Nsight Compute's own rules, GPU naming from the export.

The expected findings below are written out by hand from the rule rows of the two RTX 5090
details exports (``Rule Name`` / ``Rule Type`` / ``Rule Description`` / ``Estimated Speedup``):

dsocr_decode_cublas_gemv_rtx5090.details.csv (cuBLAS bf16 GEMV, grid 224, block 32x4):
  SOLBottleneck        OPT  "grid is too small ... only 0.7 full waves"        -> grid_too_small
  IssueSlotUtilization OPT  local 80.34 "issues an instruction every 8.3 cycles" -> issue_slots_underused
  TheoreticalOccupancy OPT  global 80.34 "(16.7%) is limited by the number of required registers"
                                                                       -> theoretical_occupancy_limited
  SOLFPRoofline        INF  (information only: not compared)
dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv (flash-decoding, grid 1x8x10, block 128):
  SOLBottleneck        OPT  "only 0.5 full waves"                              -> grid_too_small
  IssueSlotUtilization OPT  local 74 "every 10.0 cycles"                       -> issue_slots_underused
  TheoreticalOccupancy OPT  global 74 "(8.3%) is limited by the required amount of shared memory"
                                                                       -> theoretical_occupancy_limited
  SOLFPRoofline        INF  (not compared)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import shared_file

from infersight.cli import run
from infersight.ncu.analysis import analyze_ncu
from infersight.ncu.device import ExportDevice, identify_gpu
from infersight.ncu.nsight import nsight_rules, sol_class
from infersight.ncu.reader import parse_ncu_csv, read_ncu
from infersight.ncu.results import NcuReport
from infersight.render.ncu import render_ncu_json, render_ncu_markdown, render_ncu_text
from infersight.render.ncu_html import render_ncu_html

GEMV = "ncu/dsocr_decode_cublas_gemv_rtx5090.details.csv"
FLASH = "ncu/dsocr_decode_flash_fwd_splitkv_rtx5090.details.csv"
EXPECTED = {  # by hand from the rule rows (module docstring): (rule, type) -> covering infersight rule
    GEMV: [
        ("SOLBottleneck", "OPT", "grid_too_small"),
        ("IssueSlotUtilization", "OPT", "issue_slots_underused"),
        ("TheoreticalOccupancy", "OPT", "theoretical_occupancy_limited"),
    ],
    FLASH: [
        ("SOLBottleneck", "OPT", "grid_too_small"),
        ("IssueSlotUtilization", "OPT", "issue_slots_underused"),
        ("TheoreticalOccupancy", "OPT", "theoretical_occupancy_limited"),
    ],
}
LIMITER = {GEMV: "registers", FLASH: "shared memory"}


def _report(relative: str) -> NcuReport:
    return analyze_ncu([read_ncu(shared_file(relative))])


@pytest.mark.parametrize("relative", [GEMV, FLASH])
def test_every_opt_rule_row_is_covered_by_the_hand_listed_finding(relative: str) -> None:
    report = _report(relative)
    rows = [(r.rule, r.type, r.status) for r in report.nsight_rules]
    assert rows == [(rule, kind, "agrees") for rule, kind, _ in EXPECTED[relative]]
    for row, (_, _, covering) in zip(report.nsight_rules, EXPECTED[relative], strict=True):
        assert [f.split("/")[1] for f in row.findings] == [covering]
    coverage = report.nsight_coverage
    assert coverage is not None and (coverage.covered, coverage.rules, coverage.disagreements) == (3, 3, 0)
    # the INF rule (SOLFPRoofline) is read but not compared
    assert any(n.name == "SOLFPRoofline" and n.type == "INF" for n in report.kernels[0].ncu_rules)


@pytest.mark.parametrize("relative", [GEMV, FLASH])
def test_figures_agree_with_the_numbers_in_ncus_own_messages(relative: str) -> None:
    report = _report(relative)
    kernel = report.kernels[0]
    text = {r.name: r.description for r in kernel.ncu_rules}
    waves = float(re.search(r"only ([\d.]+) full waves", text["SOLBottleneck"]).group(1))  # type: ignore[union-attr]
    # waves = grid blocks / (smallest Block Limit x 170 SMs), computed: the export has no Launch Statistics
    blocks = kernel.grid[0] * kernel.grid[1] * kernel.grid[2]  # type: ignore[index]
    names = ("block_limit_registers", "block_limit_shared_mem", "block_limit_warps")
    limits = [kernel.metrics[k] for k in (*names, "block_limit_blocks", "block_limit_barriers")]
    assert kernel.metrics["waves_per_sm"] == pytest.approx(blocks / (min(limits) * 170))  # type: ignore[type-var]
    assert round(kernel.metrics["waves_per_sm"] or 0, 1) == waves
    theoretical = float(re.search(r"occupancy \(([\d.]+)%\)", text["TheoreticalOccupancy"]).group(1))  # type: ignore[union-attr]
    assert kernel.metrics["theoretical_occupancy_pct"] == pytest.approx(theoretical, abs=0.05)
    assert kernel.occupancy_limiters == [LIMITER[relative]]
    assert LIMITER[relative] in text["TheoreticalOccupancy"]
    cycles = float(re.search(r"every ([\d.]+) cycles", text["IssueSlotUtilization"]).group(1))  # type: ignore[union-attr]
    issue = next(f for f in report.findings if f.type == "ncu_issue_slots_underused")
    assert f"every {cycles:.1f} cycles" in issue.title


def test_nsight_compute_estimated_speedup_enters_the_expected_gain() -> None:
    report = _report(GEMV)
    occupancy = next(f for f in report.findings if f.type == "ncu_theoretical_occupancy_limited")
    ncu = next(r for r in report.kernels[0].ncu_rules if r.name == "TheoreticalOccupancy")
    assert ncu.speedup_type == "global" and ncu.speedup_pct == pytest.approx(80.34)
    gain = occupancy.expected_gain
    assert gain is not None and gain.low <= 0.8034 <= gain.high  # global: included in the range
    assert "Nsight Compute's own estimate (TheoreticalOccupancy, global): 80%" in gain.basis
    issue = next(f for f in report.findings if f.type == "ncu_issue_slots_underused")
    assert issue.expected_gain is not None and "local to its section" in issue.expected_gain.basis
    # infersight's own cap mirrors ncu's: 1 - busiest unit (19.66%) = 80.34%
    assert issue.expected_gain.high == pytest.approx(min(1 - 0.1966, 1 - 2000 / 6750))


def test_rtx5090_named_from_the_export_alone() -> None:
    for relative in (GEMV, FLASH):
        report = _report(relative)
        assert report.gpu is not None and report.gpu.match == "identified" and report.gpu.key == "rtx-5090"
        assert report.gpu_name == "NVIDIA GeForce RTX 5090" and report.gpu_name_source == "export"
        assert report.gpu.observed["compute capability"] == "12.0"
        # implied peak bandwidth = Memory Throughput (GB/s) / DRAM Throughput (%)
        implied = {GEMV: 345.14 / 0.1966, FLASH: 458.30 / 0.26}[relative]
        assert report.gpu.observed["implied peak DRAM bandwidth (GB/s)"] == round(implied)
        assert "rtx-pro-6000-blackwell" in report.gpu.alternatives  # same CC and bandwidth, other base clock
        assert report.kernels[0].roofline.peak_bytes_per_s == pytest.approx(1792e9)
    overridden = analyze_ncu([read_ncu(shared_file(GEMV))], gpu="rtx-pro-6000-blackwell")
    assert overridden.gpu is not None and overridden.gpu.match == "option"
    assert overridden.kernels[0].metrics["sm_count"] == 188  # waves use the overriding GPU's SMs
    assert overridden.kernels[0].metrics["waves_per_sm"] == pytest.approx(224 / (2 * 188))


def test_gpu_identification_from_figures() -> None:
    pro = identify_gpu(ExportDevice(compute_capability="12.0", sm_count=188, sm_clock_mhz=1590))
    assert pro is not None and pro.key == "rtx-pro-6000-blackwell" and pro.match == "identified"
    closest = identify_gpu(
        ExportDevice(compute_capability="12.0", sm_clock_mhz=2300, implied_bandwidth_gb_per_s=1300)
    )
    assert closest is not None and closest.match == "closest" and closest.usable
    assert "closest match" in closest.reason and "GB/s" in closest.reason
    # --clock-control none: the SM clock above base fits both 512-bit CC 12.0 parts until the SM count decides
    boosted = ExportDevice(compute_capability="12.0", sm_clock_mhz=2700, implied_bandwidth_gb_per_s=1760)
    unsure = identify_gpu(boosted)
    assert unsure is not None and unsure.match == "ambiguous" and "pass --gpu" in unsure.reason
    boosted.sm_count = 170
    sure = identify_gpu(boosted)
    assert sure is not None and sure.match == "identified" and sure.key == "rtx-5090"
    only_cc = identify_gpu(ExportDevice(compute_capability="9.0"))
    assert only_cc is not None and only_cc.match == "ambiguous" and len(only_cc.alternatives) >= 2
    other_cc = identify_gpu(ExportDevice(compute_capability="13.0", sm_count=170))
    assert other_cc is not None and other_cc.match == "closest" and not other_cc.usable


def _raw(columns: dict[str, tuple[str, str]], block: str = "(128, 1, 1)", grid: str = "(80, 1, 1)") -> str:
    header = ['"ID"', '"Kernel Name"', '"Block Size"', '"Grid Size"', '"CC"'] + [f'"{c}"' for c in columns]
    units = ['""'] * 5 + [f'"{u}"' for u, _ in columns.values()]
    row = ['"0"', '"void decode_kernel<128>(Params)"', f'"{block}"', f'"{grid}"', '"12.0"']
    row += [f'"{v}"' for _, v in columns.values()]
    return "\n".join(",".join(line) for line in (header, units, row))


BASE = {
    "device__attribute_display_name": ("", "NVIDIA GeForce RTX 5090"),
    "device__attribute_multiprocessor_count": ("", "170"),
    "gpu__time_duration.sum": ("nsecond", "20000"),
    "launch__occupancy_limit_registers": ("block", "2"),
    "launch__occupancy_limit_shared_mem": ("block", "4"),
    "launch__occupancy_limit_warps": ("block", "12"),
    "launch__occupancy_limit_blocks": ("block", "24"),
    "sm__maximum_warps_per_active_cycle_pct": ("%", "16.67"),
    "sm__warps_active.avg.pct_of_peak_sustained_active": ("%", "11.32"),
    "smsp__issue_active.avg.pct_of_peak_sustained_active": ("%", "12.06"),
}


def _fired(sm: float, memory: float, dram: float, grid: str = "(680, 1, 1)") -> set[str]:
    columns = {
        **BASE,
        "sm__throughput.avg.pct_of_peak_sustained_elapsed": ("%", str(sm)),
        "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": ("%", str(memory)),
        "dram__throughput.avg.pct_of_peak_sustained_elapsed": ("%", str(dram)),
    }
    report = analyze_ncu([parse_ncu_csv(_raw(columns, grid=grid), "raw.csv")])
    return {c.rule for c in report.checks if c.status == "fired"}


@pytest.mark.parametrize(
    ("sm", "memory", "dram", "expected", "absent"),
    [
        (30, 70, 70, "memory_heavier_than_compute", "compute_heavier_than_memory"),  # High Memory Throughput
        (70, 30, 20, "compute_heavier_than_memory", "memory_heavier_than_compute"),  # High Compute Throughput
        (85, 30, 20, "compute_saturated", "memory_saturated"),  # High Throughput, SM
        (30, 85, 85, "memory_bound", "memory_saturated"),  # High Throughput, DRAM
        (30, 85, 40, "memory_saturated", "memory_bound"),  # High Throughput, L1/L2
        (20, 30, 30, "low_sm_and_memory_throughput", "grid_too_small"),  # Latency Issue: 2 waves
    ],
)  # fmt: skip
def test_speed_of_light_classes_from_raw_metrics(
    sm: float, memory: float, dram: float, expected: str, absent: str
) -> None:
    fired = _fired(sm, memory, dram)
    assert expected in fired and absent not in fired


def test_raw_export_without_rule_rows_gets_the_same_findings() -> None:
    """The GEMV's metrics as a raw page (no rule rows): the rules come from the metrics alone."""
    columns = {
        **BASE,
        "sm__throughput.avg.pct_of_peak_sustained_elapsed": ("%", "9.15"),
        "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed": ("%", "19.66"),
        "dram__throughput.avg.pct_of_peak_sustained_elapsed": ("%", "19.66"),
    }
    report = analyze_ncu([parse_ncu_csv(_raw(columns, block="(32, 4, 1)", grid="(224, 1, 1)"), "raw.csv")])
    fired = {c.rule for c in report.checks if c.status == "fired"}
    assert {covering for _, _, covering in EXPECTED[GEMV]} <= fired
    assert report.nsight_coverage is None and report.nsight_rules == []
    assert report.gpu is not None and report.gpu.match == "named"
    assert report.kernels[0].metrics["waves_per_sm"] == pytest.approx(224 / (2 * 170))


DETAILS_HEADER = (
    '"ID","Kernel Name","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit",'
    '"Metric Value","Rule Name","Rule Type","Rule Description","Estimated Speedup Type","Estimated Speedup"'
)


LAUNCH = '"0","k(int)","(256, 1, 1)","(1360, 1, 1)","0","12.0"'


def _details(sm: float, memory: float, description: str) -> str:
    def metric(name: str, unit: str, value: float) -> str:
        return f'{LAUNCH},"GPU Speed Of Light Throughput","{name}","{unit}","{value}"'

    rule = f'{LAUNCH},"SpeedOfLight","","","","SOLBottleneck","OPT","{description}","",""'
    return "\n".join(
        [DETAILS_HEADER, metric("Compute (SM) Throughput", "%", sm), metric("Memory Throughput", "%", memory),
         metric("DRAM Throughput", "%", memory), metric("Duration", "us", 30.0), rule]
    )  # fmt: skip


def test_agreement_and_disagreement_on_the_speed_of_light_class() -> None:
    heavier = "Memory is more heavily utilized than Compute: Look at the Memory Workload Analysis section."
    agreed = analyze_ncu([parse_ncu_csv(_details(30.0, 70.0, heavier), "a.csv")])
    (row,) = agreed.nsight_rules
    assert row.status == "agrees" and row.findings[0].startswith("ncu/memory_heavier_than_compute/")
    # the same message on a kernel whose counters say compute-heavy: infersight disagrees and says why
    contradicted = analyze_ncu([parse_ncu_csv(_details(70.0, 30.0, heavier), "b.csv")])
    (row,) = contradicted.nsight_rules
    assert row.status == "disagrees" and "thresholds are not met" in row.reason
    unknown = analyze_ncu(
        [parse_ncu_csv(_details(30.0, 70.0, "x").replace("SOLBottleneck", "FPInstructions"), "c.csv")]
    )
    assert unknown.nsight_rules[0].status == "not_covered"
    assert unknown.nsight_coverage is not None and unknown.nsight_coverage.covered == 0


def test_cpi_stall_from_the_per_reason_counters() -> None:
    """Nsight Compute's CPIStall: a reason > 30% of the warp cycles per issued instruction."""
    cli = "Command line profiler metrics"
    rows = [
        DETAILS_HEADER,
        f'{LAUNCH},"{cli}","smsp__average_warp_latency_per_inst_issued.ratio","","20"',
        f'{LAUNCH},"{cli}","smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio","","9"',
        f'{LAUNCH},"{cli}","smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio","","2"',
        f'{LAUNCH},"{cli}","smsp__average_warps_issue_stalled_not_selected_per_issue_active.ratio","","15"',
        f'{LAUNCH},"Scheduler Statistics","One or More Eligible","%","25"',
        f'{LAUNCH},"WarpStateStats","","","","CPIStall","WRN","On average, each warp of this kernel spends '
        '9.0 cycles being stalled waiting for a scoreboard dependency on a L1TEX operation.","",""',
    ]
    report = analyze_ncu([parse_ncu_csv("\n".join(rows), "stall.csv")])
    kernel = report.kernels[0]
    assert kernel.stall_shares == {"long_scoreboard": pytest.approx(9 / 20), "barrier": pytest.approx(2 / 20)}
    stall = next(f for f in report.findings if f.type == "ncu_warp_stall_dominant")
    assert "long scoreboard: 45%" in stall.title  # 'not selected' is not a stall to fix (ncu skips it too)
    assert any("prefetch the next tile" in a for a in stall.advice)
    (row,) = report.nsight_rules
    assert row.rule == "CPIStall" and row.status == "agrees"


def test_mapping_table_names_real_rules_and_known_kinds() -> None:
    names = {rule.name for rule in nsight_rules()}
    assert {"SOLBottleneck", "TheoreticalOccupancy", "AchievedOccupancy", "IssueSlotUtilization",
            "LaunchConfiguration", "CPIStall*"} <= names  # fmt: skip
    cpi = next(r for r in nsight_rules() if r.name == "CPIStall*")
    assert cpi.matches("CPIStallLongScoreboard") and not cpi.matches("SOLBottleneck")
    assert sol_class("latency-bound (grid too small: 0.47 waves)") == "latency"


def test_integrated_report_views(tmp_path: Path) -> None:
    paths = [str(shared_file(GEMV)), str(shared_file(FLASH))]
    out = {ext: tmp_path / f"r.{ext}" for ext in ("json", "md", "html")}
    code = run(
        ["ncu", *paths, "--json", str(out["json"]), "--md", str(out["md"]), "--html", str(out["html"])]
    )
    assert code == 0
    report = analyze_ncu([read_ncu(Path(p)) for p in paths])
    text, markdown, html = render_ncu_text(report), render_ncu_markdown(report), render_ncu_html(report)
    for view in (text, markdown, html):
        assert "NVIDIA GeForce RTX 5090" in view
        assert "Nsight Compute's own rules vs infersight" in view
        assert "limited by registers" in view and "limited by shared memory" in view
        assert "L1 / L2 hit rate" in view and "SPEC" not in view
    assert "infersight covers 6 of Nsight Compute's 6 OPT/WRN findings (100%)" in text
    assert "<script" not in html and out["html"].read_text().startswith("<!DOCTYPE html>")
    assert '"nsight_coverage"' in render_ncu_json(report) and '"covered": 6' in out["json"].read_text()
    assert "## k0 bottlenecks" in out["md"].read_text()
