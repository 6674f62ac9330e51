"""Typed results of the host-overhead analysis (methodology §4). Analyses return these; renderers read them.

Times are integer ns, ratios fractions in [0, 1]. A metric that cannot be computed is ``None``
with ``na_reason`` — never 0 — so "no host-prep range" never reads as "host prep is hidden".
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from infersight.analyses.results import GapBucket
from infersight.rules.finding import Finding

HOST_SCHEMA_VERSION = "1.0"
Scope = Literal["aggregate", "context", "generation"]
Comparison = Literal[">", "<"]
Verdict = Literal["YES", "NO", "N/A"]
Bucket = Literal["gpu", "communication", "copy", "host"]
OpStatus = Literal["REGRESSION", "IMPROVED", "NEW", "REMOVED", "same"]


class MetricValue(BaseModel):
    """One of M1..M5 in one scope, with the threshold it was judged against."""

    id: str = Field(description="M1, M2, M3a, M3b, M3c, M4, M5")
    name: str
    value: float | None
    threshold: float
    comparison: Comparison
    crossed: bool | None = Field(description="None when the value is not applicable")
    threshold_source: str = ""
    na_reason: str | None = None


class ScopeTimes(BaseModel):
    """The interval totals behind the metrics of one scope (summed over devices)."""

    wall_ns: int = Field(description="T_total: the scope's analysis window")
    busy_ns: int = Field(description="union of kernel intervals in the window")
    idle_ns: int
    launch_api_ns: int | None = None
    nccl_busy_ns: int = Field(
        default=0, description="union of NCCL/collective kernel intervals in the window"
    )
    host_prep_ns: int | None = Field(default=None, description="union of host-prep ranges in the window")
    host_prep_exposed_ns: int | None = Field(default=None, description="host-prep ∩ GPU idle")
    devices: int = 0
    steps: int = 0


class GapFill(BaseModel):
    """What occupies a scope's window, instant by instant (methodology §4, gap attribution).

    Every instant of the window is exactly one bucket: ``gpu`` (a non-collective kernel runs),
    ``communication`` (only collective kernels run), ``copy`` (only memcpy/memset run) or
    ``host`` (nothing runs on the GPU: the GPU waits for the host). The kernel-window idle of M1
    is ``copy + host`` on the same window, so a gap filled by a copy is told from a host gap.
    """

    window: str = Field(description="activity (first to last kernel/copy/memset) or steps")
    window_ns: int = 0
    gpu_ns: int = 0
    communication_ns: int = 0
    copy_ns: int = 0
    host_ns: int = 0
    launch_exposed_ns: int | None = Field(
        default=None, description="launch-call time while nothing runs on the GPU (None: no launch calls)"
    )
    copy_by_direction: dict[str, int] = Field(
        default_factory=dict, description="copy-bucket time per direction (HtoD, DtoH, ..., memset)"
    )
    communication_by_collective: dict[str, int] = Field(
        default_factory=dict, description="communication-bucket time per collective (AllReduce, ...)"
    )

    def share(self, bucket: Bucket) -> float:
        """The bucket's fraction of the window (0 for an empty window)."""
        value = {
            "gpu": self.gpu_ns,
            "communication": self.communication_ns,
            "copy": self.copy_ns,
            "host": self.host_ns,
        }[bucket]
        return value / self.window_ns if self.window_ns > 0 else 0.0

    def primary(self) -> Bucket:
        """The largest bucket (ties go to the first of gpu, communication, copy, host)."""
        order: tuple[Bucket, ...] = ("gpu", "communication", "copy", "host")
        return max(order, key=self.share)


class ScopeVerdict(BaseModel):
    """Metrics and the YES/NO host-overhead verdict of the aggregate or one phase."""

    scope: Scope
    applicable: bool = True
    na_reason: str | None = None
    times: ScopeTimes | None = None
    metrics: list[MetricValue] = Field(default_factory=list)
    host_bound: bool = Field(
        default=False, description="YES when idle/utilisation/launch cross or host prep is confirmed"
    )
    host_prep_confirmed: bool | None = Field(
        default=None, description="M3b and M3c both cross (None: M3 n/a)"
    )
    signals: list[str] = Field(default_factory=list, description="which thresholds crossed, in words")
    attribution: GapFill | None = Field(
        default=None, description="what fills the scope's metric window (kernel span or steps)"
    )
    activity_attribution: GapFill | None = Field(
        default=None, description="aggregate only: the same over the activity window (kernels and copies)"
    )
    explained_by: Bucket | None = Field(
        default=None,
        description="the bucket that explains the scope: copy/communication when they fill the gaps, "
        "host when host-bound, else the largest bucket",
    )
    likely_cause: str = ""
    caveats: list[str] = Field(default_factory=list)

    def metric(self, metric_id: str) -> MetricValue | None:
        """The metric with this id (None when the scope has none)."""
        return next((m for m in self.metrics if m.id == metric_id), None)


class Step(BaseModel):
    """One isolated iteration on the GPU timeline of one device."""

    index: int
    device: int
    start_ns: int = Field(description="first kernel start of the step")
    end_ns: int = Field(description="last kernel end of the step")
    kernels: int
    phase: str = Field(default="unknown", description="context, generation, mixed or unknown")
    warmup: bool = False
    label: str = Field(default="", description="the step range's name, when steps come from ranges")


class IterationSet(BaseModel):
    """The iterations of a trace and how they were found (methodology §4 iteration isolation)."""

    trace: str = ""
    method: Literal["step-ranges", "allreduce", "density", "none"]
    reason: str
    phase_method: str = Field(
        default="none", description="how steps were classified: annotation, kernel-mix, none"
    )
    phase_reason: str = ""
    steps: list[Step] = Field(default_factory=list)
    deduplicated_ranges: int = Field(
        default=0, description="step ranges merged because TP ranks reported them twice"
    )
    warmup_dropped: int = 0

    def steady(self) -> list[Step]:
        """Steps that are not warm-up."""
        return [s for s in self.steps if not s.warmup]


class GapCause(BaseModel):
    """One of the largest GPU idle gaps and what the host was doing during it."""

    rank: str = Field(default="", description="the trace's label (rank or file name)")
    device: int
    start_ns: int
    end_ns: int
    length_ns: int
    bucket_cause: str = Field(description="what a gap of this length usually is (methodology §4 buckets)")
    next_kernel: str = ""
    launch_api: str | None = Field(
        default=None, description="the API call that launched the kernel ending the gap"
    )
    launch_into_gap_ns: int | None = Field(
        default=None,
        description="launch call start - gap start: > 0 means the host issued it only during the gap",
    )
    host_api: str | None = Field(
        default=None, description="API call in progress on the launching thread at gap start"
    )
    host_range: str | None = Field(
        default=None, description="innermost range open on the launching thread mid-gap"
    )
    copy_ns: int = Field(default=0, description="part of the gap covered by memcpy/memset on the device")
    step: int | None = None
    phase: str | None = None
    na_reason: str | None = None


class CauseBucket(BaseModel):
    """Gap histogram bucket labelled with the likely host cause."""

    lower_ns: int
    upper_ns: int | None
    cause: str
    count: int
    total_ns: int


class LayerPatternStat(BaseModel):
    """Idle gap inside steady steps (the repeating layer pattern) before one functional group."""

    group: str = Field(description="kernel category (GEMM, attention, ...) of the kernel after the gap")
    kernels: int = Field(description="gaps charged to the group")
    gap_ns: int
    share_of_gap: float = Field(description="share of all idle time inside steady steps")
    top_kernel: str = Field(default="", description="simplified name of the group's kernel with the most gap")


class StragglerStat(BaseModel):
    """Per-rank step wall and collective wait over a multi-rank set."""

    rank: str
    steps: int
    avg_step_ns: float | None
    collective_ns_per_step: float | None
    straggler: bool = False


class DrillDown(BaseModel):
    """Kernel-level drill-down: gaps by host cause, largest gaps, graph coverage, patterns."""

    buckets: list[CauseBucket] = Field(default_factory=list)
    simple_buckets: list[GapBucket] = Field(default_factory=list, description="the 5-bucket histogram")
    top_gaps: list[GapCause] = Field(default_factory=list)
    graph_coverage: float | None = None
    graph_kernel_count: int | None = None
    eager_kernel_count: int | None = None
    graph_coverage_na_reason: str | None = None
    layer_pattern: list[LayerPatternStat] = Field(default_factory=list)
    layer_pattern_na_reason: str | None = None


class HostReport(BaseModel):
    """Everything ``infersight host`` computes for one or more traces."""

    schema_version: str = HOST_SCHEMA_VERSION
    traces: list[str]
    host_prep_pattern: str
    verdict: Verdict
    verdict_reason: str
    scopes: list[ScopeVerdict]
    iterations: list[IterationSet]
    drilldown: DrillDown
    stragglers: list[StragglerStat] = Field(default_factory=list)
    straggler_na_reason: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    handoff: dict[str, object] = Field(
        default_factory=dict, description="machine-readable summary for agents"
    )
    notes: list[str] = Field(default_factory=list)

    def scope(self, name: Scope) -> ScopeVerdict | None:
        """The verdict of the aggregate or a phase."""
        return next((s for s in self.scopes if s.scope == name), None)


class OpRow(BaseModel):
    """Per-step figures of one operation (range name, kernel count, API call...) in a diff."""

    name: str
    kind: Literal["range", "api", "total"]
    baseline: float | None
    target: float | None
    delta: float = Field(description="target - baseline (missing side counts as 0)")
    delta_pct: float | None
    status: OpStatus
    unit: str = "µs/step"
    baseline_count: float | None = Field(default=None, description="occurrences per step")
    target_count: float | None = None
    bucket: Bucket | None = Field(
        default=None, description="the wall-time bucket the op's delta falls in (what the GPU did meanwhile)"
    )
    bucket_delta: dict[str, float] = Field(
        default_factory=dict, description="µs/step delta of the op's self time per GPU bucket"
    )


class StepBreakdown(BaseModel):
    """Single-trace root-cause breakdown over the steady-state steps."""

    trace: str
    label: str
    iterations: IterationSet
    steps: int
    avg_step_ns: float | None
    kernels_per_step: float | None
    gpu_kernel_ns_per_step: float | None
    api_ns_per_step: float | None
    api_calls_per_step: float | None
    ops: dict[str, float] = Field(default_factory=dict, description="range name -> self µs/step")
    op_counts: dict[str, float] = Field(default_factory=dict)
    apis: dict[str, float] = Field(default_factory=dict, description="API name -> µs/step")
    api_counts: dict[str, float] = Field(default_factory=dict)
    op_buckets: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="range name -> bucket -> self µs/step spent while the GPU was in that bucket",
    )
    api_buckets: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="API name -> bucket -> µs/step spent while the GPU was in that bucket",
    )
    step_markers_excluded: list[str] = Field(
        default_factory=list, description="step-marker range names left out of ops (they are steps)"
    )
    na_reason: str | None = None


class RunEnvironment(BaseModel):
    """What one trace says about where and how it ran (GPU, world size, versions, dtype, batch)."""

    gpu_model: str | None = Field(description="device name of the GPU(s) that ran this rank's work")
    gpus_active: int = Field(description="devices with GPU activity in this trace")
    gpus_visible: int = Field(description="devices the trace describes (the node's GPUs)")
    world_size: int | None = Field(description="distributed world size (Kineto distributedInfo)")
    rank: int | None
    versions: dict[str, str] = Field(default_factory=dict, description="header key -> software version")
    dtypes: dict[str, str] = Field(default_factory=dict, description="header key -> dtype / precision")
    kernel_dtypes: dict[str, float] = Field(
        default_factory=dict,
        description="hint: dtype token in matmul-class kernel names -> share of their kernel time",
    )
    batch: dict[str, str] = Field(
        default_factory=dict, description="header batch keys, and requests/tokens per step from step markers"
    )


class EnvironmentChange(BaseModel):
    """One environment fact that differs between baseline and target."""

    field: str = Field(description="gpu_model, world_size, gpus_active, version:KEY, dtype:KEY, batch:KEY")
    baseline: str | None
    target: str | None
    hardware: bool = Field(description="GPU model or GPU count: kernel times are not comparable")


class BucketRow(BaseModel):
    """One wall-time bucket (or one operator category of the gpu bucket) per step, in µs."""

    name: str = Field(description="gpu, communication, copy, host; or gpu:CATEGORY")
    baseline: float
    target: float
    delta: float = Field(description="target - baseline, µs/step")
    share_of_wall_delta: float | None = Field(
        description="delta / step wall delta (None when the wall did not change); buckets sum to 1"
    )


class StepBuckets(BaseModel):
    """One trace's steady-step windows split into the wall-time buckets (methodology §3.2)."""

    steps: int = Field(description="steady steps averaged over (1 when the whole window stands in)")
    window: Literal["steps", "activity"] = Field(
        description="steps: the steady steps' first-kernel-start to last-kernel-end windows; "
        "activity: no steps were isolated, the device activity window counts as one step"
    )
    wall_ns: int = Field(description="sum of the windows, ns")
    times_ns: dict[str, int] = Field(description="bucket -> ns over all windows; sums to wall_ns")
    gpu_categories_ns: dict[str, float] = Field(
        default_factory=dict, description="gpu bucket split by operator category (kernel-time shares)"
    )


class WallDecomposition(BaseModel):
    """The per-step wall delta split into buckets, before any per-operation blame."""

    baseline: StepBuckets
    target: StepBuckets
    wall: BucketRow = Field(description="step wall µs/step")
    buckets: list[BucketRow] = Field(description="gpu, communication, copy, host: sum to the wall delta")
    gpu_categories: list[BucketRow] = Field(description="the gpu bucket's delta by operator category")
    note: str | None = None


class WorkloadSimilarity(BaseModel):
    """How much of the two traces' kernel time runs kernels both traces run."""

    shared_kernel_time: float = Field(description="fraction of both traces' kernel time on shared names")
    baseline_shared: float
    target_shared: float
    shared_names: int
    baseline_names: int
    target_names: int
    threshold: float
    threshold_source: str
    comparable: bool


class DiffReport(BaseModel):
    """Baseline vs target: what changed per step, ranked by |delta|."""

    schema_version: str = HOST_SCHEMA_VERSION
    labels: tuple[str, str]
    baseline: StepBreakdown
    target: StepBreakdown
    summary: list[OpRow] = Field(description="wall, kernels, GPU kernel time, API time/count per step")
    ops: list[OpRow] = Field(description="range self time µs/step, by |delta|")
    apis: list[OpRow] = Field(description="CUDA API time µs/step, by |delta|")
    root_cause: str
    environment: tuple[RunEnvironment, RunEnvironment] | None = Field(
        default=None, description="baseline and target environment"
    )
    environment_changes: list[EnvironmentChange] = Field(default_factory=list)
    decomposition: WallDecomposition | None = None
    similarity: WorkloadSimilarity | None = None
    warnings: list[str] = Field(default_factory=list, description="read these before the per-op table")
    findings: list[Finding] = Field(default_factory=list)
    handoff: dict[str, object] = Field(default_factory=dict)
