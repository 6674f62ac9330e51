"""Typed results of the kernel deep dive (methodology §6). The analysis returns these; renderers read them.

Units: times in ns, bytes in bytes, rates per second, percentages as ncu prints them (0-100,
named ``*_pct``), shares and E_roof as fractions. A value that cannot be computed is None with a
reason (``*_na_reason`` or an entry of ``missing``) — never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from infersight.rules.finding import Finding

NCU_REPORT_SCHEMA_VERSION = (
    "1.2"  # 1.1: device_warnings; 1.2: gpu identity, launch figures, Nsight Compute comparison
)


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


class LaunchConfig(BaseModel):
    """One launch configuration of a kernel in the trace: how often and how long."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    count: int
    total_ns: int


class TraceMatch(BaseModel):
    """The kernel's figures in the nsys/Kineto trace (joined on the simplified name and, where the
    trace records launch dimensions, the grid and block)."""

    name: str
    count: int = Field(description="launches of this name (of this grid/block when config_match)")
    total_ns: int
    avg_ns: float
    share: float = Field(description="share of all kernel time in the trace")
    config_match: bool | None = Field(
        default=None,
        description="True: the trace ran this grid/block (figures are that configuration's); False: "
        "the trace never launched the profiled configuration (figures are the name's); None: the "
        "trace has no launch dimensions",
    )
    launch_configs: list[LaunchConfig] = Field(
        default_factory=list, description="every grid/block the trace launched this name with"
    )


class NcuRuleNote(BaseModel):
    """One of Nsight Compute's own rule results (details exports)."""

    name: str
    type: str
    description: str
    speedup_type: str = ""
    speedup_pct: float | None = None


class GpuIdentity(BaseModel):
    """Which GPU the export was measured on, and how that was decided."""

    name: str | None = Field(default=None, description="the spec-table entry's name")
    key: str | None = Field(default=None, description="the spec-table key (what --gpu accepts)")
    source: Literal["option", "export", "trace"]
    match: Literal["named", "identified", "ambiguous", "closest", "option", "trace"] = Field(
        description="named: the export names the device; identified: its figures fit one entry; "
        "ambiguous: several fit; closest: none fits, the nearest is shown with what differs"
    )
    observed: dict[str, float | str] = Field(
        default_factory=dict, description="the export's device figures (compute capability, SMs, clocks, ...)"
    )
    differences: list[str] = Field(default_factory=list, description="what the closest entry differs in")
    alternatives: list[str] = Field(default_factory=list, description="other entries that fit as well")
    reason: str = ""
    usable: bool = Field(default=True, description="whether its peaks are used for the roofline")


class NsightRuleComparison(BaseModel):
    """One of Nsight Compute's OPT/WRN rule results next to what infersight found on that kernel."""

    kernel: str = Field(description="k<index>")
    rule: str
    type: str
    description: str
    speedup_type: str = ""
    speedup_pct: float | None = None
    kinds: list[str] = Field(description="the infersight finding kinds that cover this rule")
    status: Literal["agrees", "disagrees", "not_covered"]
    findings: list[str] = Field(default_factory=list, description="ids of the covering infersight findings")
    reason: str = ""


class NsightCoverage(BaseModel):
    """How many of Nsight Compute's OPT/WRN findings infersight's findings cover (details exports)."""

    rules: int
    covered: int
    disagreements: int
    infersight_only: list[str] = Field(
        default_factory=list, description="infersight findings no Nsight Compute rule of the export reports"
    )


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
    stall_shares: dict[str, float] = Field(
        default_factory=dict,
        description="warp-stall reason -> share of the cycles between two issued instructions (raw exports)",
    )
    occupancy_limiters: list[str] = Field(
        default_factory=list,
        description="what caps the theoretical occupancy (registers, shared memory, warps, blocks): "
        "the smallest Block Limit",
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
    verdict: str | None = Field(
        default=None, description="the trace's primary bottleneck headline (gpu/communication/copy/host)"
    )
    categories: dict[str, float] = Field(
        default_factory=dict, description="operator category -> share of GPU kernel time (largest first)"
    )


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
    gpu: GpuIdentity | None = Field(default=None, description="how the GPU was named")
    kernels: list[KernelProfile]
    trace: TraceOverview | None = None
    findings: list[Finding]
    checks: list[RuleCheck]
    nsight_rules: list[NsightRuleComparison] = Field(
        default_factory=list, description="Nsight Compute's own OPT/WRN rules and the findings covering them"
    )
    nsight_coverage: NsightCoverage | None = Field(
        default=None, description="None when no export carries Nsight Compute's rule rows"
    )
    theory: TheoryOverlay | None = Field(
        default=None, description="theory operator points of --model/--config's scenario (both phases)"
    )
    notes: list[str] = Field(default_factory=list)
    device_warnings: list[str] = Field(
        default_factory=list, description="exports profiled on another GPU than the traces (MCP ncu, agent)"
    )
