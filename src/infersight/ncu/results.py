"""Typed results of the kernel deep dive (methodology §6). The analysis returns these; renderers read them.

Units: times in ns, bytes in bytes, rates per second, percentages as ncu prints them (0-100,
named ``*_pct``), shares and E_roof as fractions. A value that cannot be computed is None with a
reason (``*_na_reason`` or an entry of ``missing``) — never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from infersight.rules.finding import Finding

NCU_REPORT_SCHEMA_VERSION = "1.1"  # 1.1: device_warnings


class RooflinePoint(BaseModel):
    """Where a kernel sits on the roofline, from its own counters."""

    flops: float | None = Field(
        default=None, description="FLOPs: CUDA-core add + mul + 2·fma per precision, plus tensor ops"
    )
    flops_by_precision: dict[str, float] = Field(default_factory=dict)
    flops_na_reason: str | None = None
    precision: str | None = Field(
        default=None, description="precision with the most FLOPs (its peak is the roof)"
    )
    dram_bytes: float | None = None
    duration_ns: float | None = None
    achieved_flop_per_s: float | None = None
    achieved_bytes_per_s: float | None = None
    intensity: float | None = Field(default=None, description="FLOPs per DRAM byte")
    peak_flop_per_s: float | None = None
    peak_bytes_per_s: float | None = None
    bound: Literal["memory", "compute"] | None = Field(
        default=None, description="which roof is lower at this intensity"
    )
    upper_flop_per_s: float | None = Field(default=None, description="P_upper = min(P_peak, I·B_peak)")
    e_roof: float | None = Field(default=None, description="P_achieved / P_upper (methodology §2)")
    e_roof_na_reason: str | None = None
    dram_efficiency: float | None = Field(default=None, description="achieved DRAM bytes/s / peak bandwidth")


class TraceMatch(BaseModel):
    """The kernel's figures in the nsys/Kineto trace (joined on the simplified name)."""

    name: str
    count: int
    total_ns: int
    avg_ns: float
    share: float = Field(description="share of all kernel time in the trace")


class NcuRuleNote(BaseModel):
    """One of Nsight Compute's own rule results (details exports)."""

    name: str
    type: str
    description: str
    speedup_type: str = ""
    speedup_pct: float | None = None


class KernelProfile(BaseModel):
    """One kernel (name + grid + block) and the median of its profiled launches."""

    name: str = Field(description="full name as ncu printed it")
    short_name: str
    category: str
    grid: tuple[int, int, int] | None = None
    block: tuple[int, int, int] | None = None
    launches: int
    launch_ids: list[int]
    source: str
    metrics: dict[str, float | None] = Field(description="canonical metrics (median over launches)")
    metric_sources: dict[str, str] = Field(default_factory=dict, description="the ncu metric each came from")
    missing: dict[str, str] = Field(
        default_factory=dict, description="why a metric is None and how to get it"
    )
    not_applicable: list[str] = Field(
        default_factory=list,
        description="ratio metrics whose denominator is 0 in every launch (no such accesses)",
    )
    duration_cv: float | None = Field(
        default=None, description="std/mean of launch durations (run-to-run variation)"
    )
    sol_verdict: str | None = Field(
        default=None, description="speed-of-light verdict as Nsight Compute's own rule"
    )
    roofline: RooflinePoint
    trace: TraceMatch | None = None
    ncu_rules: list[NcuRuleNote] = Field(default_factory=list)


class RuleCheck(BaseModel):
    """Whether a rule could be checked on a kernel, and what was missing."""

    rule: str
    kernel: str
    status: Literal["fired", "passed", "not_evaluated", "not_applicable"]
    missing: list[str] = Field(default_factory=list)


class TraceKernelShare(BaseModel):
    """One row of the trace overview: a kernel's share of GPU kernel time."""

    name: str
    category: str
    count: int
    total_ns: int
    share: float
    profiled: bool = Field(description="whether the ncu export holds this kernel")


class TraceOverview(BaseModel):
    """The nsys/Kineto side of the integrated report."""

    source: list[str]
    wall_ns: int
    kernel_time_ns: int
    top_kernels: list[TraceKernelShare]
    nccl_share: float | None = None


class TheoryPoint(BaseModel):
    """One theory operator on the roofline: it sits on the roof by construction (methodology §2)."""

    phase: str
    operator: str
    category: str
    intensity: float = Field(description="F / memory bytes per occurrence")
    flop_per_s: float = Field(description="attainable FLOP/s: F / T_roof")
    flops: float = Field(description="FLOPs per occurrence per GPU")
    memory_bytes: float
    bound: str
    share: float | None = Field(default=None, description="share of its pass's T_theory")


class TheoryOverlay(BaseModel):
    """The theory engine's operator points for the user's scenario, plotted with the measured kernels."""

    model: str
    gpu: str
    compute_dtype: str
    batch: int
    prompt_len: int
    context_len: int
    tp: int
    matmul_peak_flop_per_s: float
    vector_peak_flop_per_s: float
    effective_bytes_per_s: float = Field(description="B_eff = η · datasheet bandwidth (the theory roofs)")
    points: list[TheoryPoint]


class NcuReport(BaseModel):
    """The integrated kernel deep-dive report (terminal, Markdown and JSON show this)."""

    schema_version: str = NCU_REPORT_SCHEMA_VERSION
    tool_version: str
    sources: list[str]
    gpu_name: str | None = None
    gpu_name_source: str | None = Field(default=None, description="'export', 'option' or 'trace'")
    kernels: list[KernelProfile]
    trace: TraceOverview | None = None
    findings: list[Finding]
    checks: list[RuleCheck]
    theory: TheoryOverlay | None = Field(
        default=None, description="theory operator points of --model/--config's scenario (both phases)"
    )
    notes: list[str] = Field(default_factory=list)
    device_warnings: list[str] = Field(
        default_factory=list, description="exports profiled on another GPU than the traces (MCP ncu, agent)"
    )
