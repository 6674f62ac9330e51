"""Renderer tests on a hand-built report: sections present and numbers formatted as expected.

The report is written by hand (not computed), so every expected string below follows from the
input numbers and the documented formatting rules alone.
"""

from __future__ import annotations

import json
import re

import pytest

from infersight.analyses.results import (
    CategoryStat,
    DeviceTimeline,
    GapBucket,
    GlobalProfile,
    KernelStat,
    PhaseSplit,
    PhaseStat,
    RangeStat,
    TraceSummary,
    TransferStat,
    Window,
)
from infersight.analysis_report import REPORT_SCHEMA_VERSION, AnalysisReport
from infersight.render.json_report import load_report, render_json, report_json_schema
from infersight.render.markdown import render_markdown
from infersight.render.sections import fmt_bytes, fmt_duration, fmt_pct, fmt_quantity
from infersight.render.terminal import render_terminal_text
from infersight.rules.finding import Evidence, ExpectedGain, Finding, Location

WINDOW = Window(intervals_ns=[(1_000, 10_001_000)], duration_ns=10_000_000, source="kernels")


def _timeline(device: int | None, *, launch: bool) -> DeviceTimeline:
    return DeviceTimeline(
        trace="/data/run.sqlite",
        rank=0,
        device=device,
        gpu_name="NVIDIA H100 80GB HBM3" if device is not None else None,
        window=WINDOW,
        wall_ns=10_000_000,
        busy_ns=6_500_000,
        idle_ns=3_500_000,
        idle_ratio=0.35,
        utilization=0.65,
        kernel_count=1_234,
        kernel_time_ns=7_000_000,
        launch_api_count=1_234 if launch else None,
        launch_api_ns=1_500_000 if launch else None,
        launch_overhead_ratio=0.15 if launch else None,
        launch_overhead_na_reason=None if launch else "no CUDA runtime events in the trace",
        transfers=[
            TransferStat(
                direction="HtoD",
                count=12,
                total_ns=250_000,
                bytes=3_000_000,
                bandwidth_gb_per_s=12.0,
                pageable_count=2,
            )
        ],
        gap_buckets=[
            GapBucket(lower_ns=0, upper_ns=5_000, count=1_000, total_ns=2_000_000),
            GapBucket(lower_ns=5_000, upper_ns=20_000, count=100, total_ns=1_000_000),
            GapBucket(lower_ns=1_000_000, upper_ns=None, count=0, total_ns=0),
        ],
    )


def _kernel(name: str, category: str, count: int, total_ns: int, share: float) -> KernelStat:
    return KernelStat(
        name=name,
        full_name=f"void {name}<128>(float*)",
        category=category,
        count=count,
        total_ns=total_ns,
        share=share,
        avg_ns=total_ns / count,
        median_ns=4_100.0,
        min_ns=3_900,
        max_ns=12_345,
        std_ns=250.5,
    )


def build_report(device_kind: str = "gpu", *, findings: bool = True) -> AnalysisReport:
    """A small but complete report with known numbers."""
    kernels = [
        _kernel("sm90_xmma_gemm_bf16", "GEMM", 1_000, 4_200_000, 0.6),
        _kernel("flash_fwd_kernel", "attention", 200, 2_100_000, 0.3),
        _kernel("rms_norm_kernel<float>", "norm", 34, 700_000, 0.1),
    ]
    categories = [
        CategoryStat(
            category="GEMM",
            count=1_000,
            total_ns=4_200_000,
            share=0.6,
            avg_ns=4_200.0,
            median_ns=4_100.0,
            min_ns=3_900,
            max_ns=12_345,
            std_ns=250.5,
            top_kernels=["sm90_xmma_gemm_bf16", "cutlass_gemm", "third_gemm"],
        )
    ]
    ranges = [
        RangeStat(
            name="_forward_step",
            domain="",
            source="nvtx",
            count=10,
            total_ns=9_000_000,
            avg_ns=900_000.0,
            median_ns=880_000.0,
            min_ns=850_000,
            max_ns=1_200_000,
            std_ns=10_000.0,
            gpu_kernel_count=1_200,
            gpu_time_ns=6_800_000,
            gpu_busy_ns=6_400_000,
        ),
        RangeStat(
            name="host_prep",
            source="nvtx",
            count=10,
            total_ns=500_000,
            avg_ns=50_000.0,
            median_ns=50_000.0,
            min_ns=40_000,
            max_ns=60_000,
            std_ns=5_000.0,
            projection_na_reason="no correlation ids in the trace",
        ),
    ]
    phases = PhaseSplit(
        method="annotation",
        reason="ranges named like 'prefill'/'decode' were found",
        phases=[
            PhaseStat(
                phase="prefill",
                wall_ns=2_000_000,
                busy_ns=1_900_000,
                idle_ratio=0.05,
                kernel_count=300,
                kernel_time_ns=1_950_000,
                avg_kernel_ns=6_500.0,
                steps=1,
                launch_overhead_na_reason="no launch calls in this phase",
            ),
            PhaseStat(
                phase="decode",
                wall_ns=8_000_000,
                busy_ns=4_600_000,
                idle_ratio=0.425,
                kernel_count=934,
                kernel_time_ns=5_050_000,
                avg_kernel_ns=5_407.0,
                steps=9,
                launch_overhead_ratio=0.2,
            ),
        ],
    )
    profile = GlobalProfile(
        traces=[
            TraceSummary(
                source="/data/run.sqlite",
                format="nsys-sqlite",
                rank=0,
                device_kind=device_kind,
                gpus=["NVIDIA H100 80GB HBM3"],
                kernels=1_234,
                memcpy=12,
                memset=0,
                api_calls=5_000,
                ranges=20,
                notes=["no MEMSET table: memsets not recorded"],
            )
        ],
        devices=[_timeline(0, launch=True)],
        total=_timeline(None, launch=True),
        kernels=kernels,
        categories=categories,
        ranges=ranges,
        phases=phases,
    )
    finding = Finding(
        id="gpu_idle/dev0",
        type="gpu_idle",
        title="GPU idle 35.0% of the window",
        severity="critical",
        location=Location(scope="device", rank=0, device=0, time_range_ns=(1_000, 10_001_000)),
        evidence=[
            Evidence(metric="idle_ratio", value=0.35, unit="ratio", threshold=0.3, comparison=">"),
            Evidence(metric="idle_ns", value=3_500_000, unit="ns"),
        ],
        advice=["Capture the decode loop in CUDA Graphs"],
        expected_gain=ExpectedGain(low=0.1, high=0.25, basis="half to most of the idle time"),
        confidence="medium",
        confidence_reason="single trace, no repeats",
        verification=["nsys profile -o after python serve.py", "infersight analyze after.sqlite"],
    )
    return AnalysisReport(tool_version="0.1.0", profile=profile, findings=[finding] if findings else [])


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (850, "850 ns"),
        (4_100, "4.10 µs"),
        (12_345, "12.3 µs"),
        (250_000, "250 µs"),
        (4_200_000, "4.20 ms"),
        (123_456_789, "123 ms"),
        (2_500_000_000, "2.50 s"),
        (312_000_000_000, "312 s"),
    ],
)
def test_fmt_duration_picks_human_units(ns: int, text: str) -> None:
    assert fmt_duration(ns) == text


def test_fmt_other_units() -> None:
    assert fmt_bytes(3_000_000) == "3.00 MB"
    assert fmt_bytes(512) == "512 B"
    assert fmt_pct(0.35) == "35.0%"
    assert fmt_pct(None) == "n/a"
    assert fmt_quantity(0.15, "ratio") == "15.0%"
    assert fmt_quantity(3_500_000, "ns") == "3.50 ms"
    assert fmt_quantity(None, "ns") == "n/a"


def test_terminal_report_sections_and_numbers() -> None:
    text = render_terminal_text(build_report())
    for section in (
        "Traces read",
        "Devices",
        "Operator categories",
        "Top 3 kernels (of 3)",
        "NVTX / annotation ranges",
        "Prefill vs decode",
        "Findings (1)",
    ):
        assert section in text, section
    assert "run.sqlite" in text and "NVIDIA H100 80GB HBM3" in text
    assert "35.0%" in text and "65.0%" in text  # idle, utilisation
    assert "15.0%" in text and "1,234 / 1.50 ms" in text  # launch overhead
    assert "Memcpy / memset" in text
    assert re.search(r"rank 0 dev 0\s+HtoD\s+12\s+3\.00 MB\s+250 µs\s+12\.0 GB/s\s+2\s", text)
    assert "sm90_xmma_gemm_bf16" in text and "60.0%" in text and "4.20 ms" in text
    assert "12.3 µs" in text  # max kernel duration
    assert "GPU projection n/a (host_prep): no correlation ids in the trace" in text
    assert "method: annotation" in text and "42.5%" in text  # decode idle ratio
    assert "idle_ratio = 35.0% (threshold > 30.0%)" in text
    assert "10.0%–25.0% of wall time" in text
    assert "confidence: medium — single trace, no repeats" in text
    assert "$ infersight analyze after.sqlite" in text
    assert "no MEMSET table" in text  # reader notes are shown
    assert "Idle gaps between kernels" in text
    assert "< 5 µs" in text and "5 µs–20 µs" in text and "≥ 1 ms" in text
    assert "1,000 / 2.00 ms" in text and "100 / 1.00 ms" in text
    assert "20.0%" in text and "launch overhead n/a (prefill): no launch calls in this phase" in text
    assert "CPU capture" not in text


def test_terminal_shows_launch_na_reason_and_top_limit() -> None:
    report = build_report()
    report.profile.devices[0] = _timeline(0, launch=False)
    text = render_terminal_text(report, top=1)
    assert "launch overhead n/a (rank 0 dev 0): no CUDA runtime events in the trace" in text
    assert "Top 1 kernels (of 3)" in text
    assert "flash_fwd_kernel" not in text
    assert "2 more kernel names (40.0% of kernel time) not shown" in text


def test_cpu_capture_is_flagged_at_the_top() -> None:
    text = render_terminal_text(build_report("cpu"))
    assert "CPU capture" in text
    assert text.index("CPU capture") < text.index("Traces read")
    md = render_markdown(build_report("cpu"))
    assert md.index("CPU operators stand in for GPU kernels") < md.index("## Traces read")


def test_markdown_has_same_sections_and_figures() -> None:
    md = render_markdown(build_report())
    assert md.startswith("# infersight report")
    for heading in (
        "## Traces read",
        "## Devices",
        "## Operator categories",
        "## Top 3 kernels (of 3)",
        "## Prefill vs decode",
        "## Findings (1)",
        "### [critical] GPU idle 35.0% of the window",
    ):
        assert heading in md, heading
    assert "| time % | total | count | avg | median | min | max | std | category | name |" in md
    gemm_row = "| 60.0% | 4.20 ms | 1,000 | 4.20 µs | 4.10 µs | 3.90 µs | 12.3 µs | 250 ns | GEMM |"
    assert gemm_row + " sm90_xmma_gemm_bf16 |" in md
    assert "| 10.0 ms | 6.50 ms | 35.0% | 65.0% | 1,234 | 7.00 ms | 15.0% | 1,234 / 1.50 ms |" in md
    assert "| rank 0 dev 0 | HtoD | 12 | 3.00 MB | 250 µs | 12.0 GB/s | 2 |" in md
    assert "  - idle_ratio = 35.0% (threshold > 30.0%)" in md
    assert "  nsys profile -o after python serve.py" in md
    # kernel names are literal text, not HTML tags; the terminal shows them as they are
    assert "| rms_norm_kernel&lt;float> |" in md and "rms_norm_kernel<float>" not in md
    assert "rms_norm_kernel<float>" in render_terminal_text(build_report())
    # multi-line cells become <br> so the table stays one row per line; top 2 kernels only
    assert "| sm90_xmma_gemm_bf16<br>cutlass_gemm |" in md and "third_gemm" not in md
    assert "| where | < 5 µs | 5 µs–20 µs | ≥ 1 ms |" in md
    assert "| rank 0 dev 0 | 1,000 / 2.00 ms | 100 / 1.00 ms | 0 / 0 ns |" in md


def test_no_findings_is_said_explicitly() -> None:
    report = build_report(findings=False)
    assert "no rule fired" in render_terminal_text(report)
    assert "_No rule fired._" in render_markdown(report)


def test_json_report_round_trips_and_has_schema() -> None:
    report = build_report()
    text = render_json(report)
    data = json.loads(text)
    assert data["schema_version"] == REPORT_SCHEMA_VERSION
    assert data["profile"]["devices"][0]["idle_ratio"] == 0.35
    assert load_report(text) == report
    schema = report_json_schema()
    assert schema["title"] == "AnalysisReport"
    assert {"schema_version", "tool_version", "profile", "findings"} <= set(schema["properties"])


def test_names_print_as_written_emoji_codes_and_control_characters_included() -> None:
    """A name holding ``:fire:`` or ``:cl:`` (rich emoji codes) prints literally; a control
    character becomes U+FFFD (the console every terminal view uses)."""
    import io

    from infersight.render.sanitize import sanitizing_console

    buffer = io.StringIO()
    console = sanitizing_console(file=buffer, width=120, color_system=None, markup=False)
    console.print("kernel:fire:tile :cl: op\x1b[2J")
    assert buffer.getvalue() == "kernel:fire:tile :cl: op\ufffd[2J\n"
