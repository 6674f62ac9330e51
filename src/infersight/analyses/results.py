"""Typed results of the global profile (methodology §3). Analyses return these; renderers read them.

All times are integer nanoseconds (``*_ns``); ratios are fractions in [0, 1]. A metric that
cannot be computed from the trace is ``None`` with a ``*_na_reason`` saying why — never 0.
The JSON report (:class:`infersight.analysis_report.AnalysisReport`) wraps :class:`GlobalProfile`
with the findings and the theory part.
"""

from __future__ import annotations

import warnings

from pydantic import BaseModel, Field


class Window(BaseModel):
    """The analysis window: one or more [start, end) intervals on the trace clock."""

    intervals_ns: list[tuple[int, int]]
    duration_ns: int = Field(description="total length of the intervals")
    source: str = Field(description="'kernels' (first kernel start -> last kernel end) or 'nvtx:<regex>'")


class TransferStat(BaseModel):
    """Memcpy or memset time/bytes of one direction (HtoD, DtoH, DtoD, PtoP, ..., or 'memset')."""

    direction: str
    count: int
    total_ns: int
    bytes: int
    bandwidth_gb_per_s: float | None = Field(description="bytes / total time; None if total_ns == 0")
    pageable_count: int = Field(0, description="copies with a pageable host side (synchronous in effect)")


class GapBucket(BaseModel):
    """Idle gaps between busy blocks of one length bucket (methodology §4 drill-down buckets)."""

    lower_ns: int
    upper_ns: int | None = Field(description="exclusive upper bound; None for the open last bucket")
    count: int
    total_ns: int


class EagerKernelStat(BaseModel):
    """A kernel (simplified name) launched eagerly, i.e. not replayed from a CUDA graph."""

    name: str = Field(description="simplified kernel name")
    count: int
    total_ns: int


class GraphCoverage(BaseModel):
    """How much of the kernel work CUDA graphs already replay (methodology §4: eager vs graph kernels).

    A kernel is a graph kernel when its launching API call (joined on process + correlation) is
    cudaGraphLaunch / cuGraphLaunch / hipGraphLaunch, or when it carries a CUDA graph id (nsys).
    The same fields appear flat on :class:`DeviceTimeline` and :class:`PhaseStat`.
    """

    graph_kernel_count: int | None = Field(default=None, description="kernels replayed from CUDA graphs")
    graph_kernel_time_ns: int | None = Field(default=None, description="sum of those kernels' durations")
    graph_coverage: float | None = Field(default=None, description="graph_kernel_count / kernel_count")
    graph_coverage_na_reason: str | None = None
    graph_launch_count: int | None = Field(
        default=None, description="graph replays (distinct launch correlation ids) whose kernels are counted"
    )
    top_eager_kernels: list[EagerKernelStat] = Field(
        default_factory=list, description="eager kernels by total time, longest first (top 5)"
    )


class DeviceTimeline(BaseModel):
    """Time-based utilisation of one device (or the total over devices) within the window."""

    trace: str = Field(description="source file the device came from")
    rank: int | None = None
    device: int | None = Field(description="None for the total over all devices")
    gpu_name: str | None = None
    window: Window
    wall_ns: int
    busy_ns: int = Field(description="union of kernel intervals inside the window")
    idle_ns: int
    idle_ratio: float
    utilization: float = Field(description="1 - idle_ratio")
    kernel_count: int
    kernel_time_ns: int = Field(description="sum of kernel durations (concurrent kernels count twice)")
    launch_api_count: int | None = None
    launch_api_ns: int | None = None
    launch_overhead_ratio: float | None = None
    launch_overhead_na_reason: str | None = None
    transfers: list[TransferStat] = Field(default_factory=list)
    gap_buckets: list[GapBucket] = Field(
        default_factory=list, description="idle gaps between kernel busy blocks inside the window"
    )
    graph_kernel_count: int | None = Field(default=None, description="kernels replayed from CUDA graphs")
    graph_kernel_time_ns: int | None = Field(default=None, description="window-clipped time of those kernels")
    graph_coverage: float | None = Field(default=None, description="graph_kernel_count / kernel_count")
    graph_coverage_na_reason: str | None = None
    graph_launch_count: int | None = Field(
        default=None,
        description="graph replays (distinct launch correlation ids) whose kernels ran in the window",
    )
    top_eager_kernels: list[EagerKernelStat] = Field(
        default_factory=list, description="eager kernels by window-clipped time, longest first (top 5)"
    )
    eager_gap_buckets: list[GapBucket] | None = Field(
        default=None,
        description=(
            "the gap histogram restricted to gaps next to an eager kernel (ending or starting the "
            "gap): the dispatch latency that wider graph capture would remove; None when graph "
            "coverage is not applicable"
        ),
    )


class KernelStat(BaseModel):
    """One row of the kernel summary (like ``nsys stats cuda_gpu_kern_sum``)."""

    name: str = Field(description="simplified kernel name")
    full_name: str = Field(description="one full (demangled) name that maps to it")
    category: str
    count: int
    total_ns: int
    share: float = Field(description="total_ns / sum of all kernel time")
    avg_ns: float
    median_ns: float
    min_ns: int
    max_ns: int
    std_ns: float


class CategoryStat(BaseModel):
    """Kernel time of one operator category (GEMM, attention, ...)."""

    category: str
    count: int
    total_ns: int
    share: float
    avg_ns: float
    median_ns: float
    min_ns: int
    max_ns: int
    std_ns: float
    top_kernels: list[str] = Field(default_factory=list, description="simplified names, by time")


class RangeStat(BaseModel):
    """One NVTX / annotation range name (like ``nsys stats nvtx_sum``) with its GPU projection."""

    name: str
    domain: str = ""
    source: str
    count: int
    total_ns: int
    avg_ns: float
    median_ns: float
    min_ns: int
    max_ns: int
    std_ns: float
    gpu_kernel_count: int | None = Field(
        None, description="kernels launched (by correlation id) from the range's thread inside it"
    )
    gpu_time_ns: int | None = Field(None, description="sum of those kernels' durations")
    gpu_busy_ns: int | None = Field(None, description="union of those kernels' intervals")
    projection_na_reason: str | None = None


class PhaseStat(BaseModel):
    """Profile of one phase (prefill or decode)."""

    phase: str
    wall_ns: int
    busy_ns: int
    idle_ratio: float
    kernel_count: int
    kernel_time_ns: int
    avg_kernel_ns: float | None
    steps: int = Field(description="number of ranges/iterations classified into this phase")
    top_categories: list[CategoryStat] = Field(default_factory=list)
    gap_buckets: list[GapBucket] = Field(
        default_factory=list, description="idle gaps between busy blocks inside the phase's steps"
    )
    eager_gap_buckets: list[GapBucket] | None = Field(
        default=None,
        description=(
            "the phase's gap histogram restricted to gaps next to an eager kernel; None when graph "
            "coverage is not applicable"
        ),
    )
    launch_overhead_ratio: float | None = Field(
        None, description="time in the launch calls of this phase's kernels / phase wall time"
    )
    launch_overhead_na_reason: str | None = None
    graph_kernel_count: int | None = Field(default=None, description="kernels replayed from CUDA graphs")
    graph_kernel_time_ns: int | None = Field(default=None, description="sum of those kernels' durations")
    graph_coverage: float | None = Field(default=None, description="graph_kernel_count / kernel_count")
    graph_coverage_na_reason: str | None = Field(
        default=None, description="why graph coverage is None (also None when it was simply not computed)"
    )
    graph_launch_count: int | None = None
    top_eager_kernels: list[EagerKernelStat] = Field(default_factory=list)


class PhaseSplit(BaseModel):
    """Prefill vs decode split and how it was decided."""

    method: str = Field(description="'annotation', 'kernel-mix' or 'none'")
    reason: str
    phases: list[PhaseStat] = Field(default_factory=list)


class TraceSummary(BaseModel):
    """What was read from one input."""

    source: str
    format: str
    rank: int | None
    device_kind: str
    gpus: list[str]
    kernels: int
    memcpy: int
    memset: int
    api_calls: int
    ranges: int
    notes: list[str] = Field(default_factory=list)


# "copy" is the bucket's name in the JSON contract; it shadows the deprecated BaseModel.copy()
# method, which pydantic warns about once at class creation. Field access works as usual.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "copy"', category=UserWarning)

    class BucketShares(BaseModel):
        """The four exclusive wall-time buckets (docs/methodology.md §3.2), as fractions or in ns."""

        gpu: float = Field(description="a non-communication kernel runs")
        communication: float = Field(description="only collective kernels run (NCCL/RCCL, custom all-reduce)")
        copy: float = Field(description="only memcpy/memset run")  # type: ignore[assignment]
        host: float = Field(description="nothing runs on the GPU: the GPU waits for the host")


class CategoryTime(BaseModel):
    """Kernel time of one operator category inside the ``gpu`` bucket."""

    category: str
    kernel_time_ns: int = Field(description="sum of the category's window-clipped kernel durations")
    share: float = Field(description="of all non-communication kernel time")


class CopyDirectionTime(BaseModel):
    """Copies of one direction (HtoD, DtoH, DtoD, PtoP, UVM HtoD, UVM DtoH, memset, ...)."""

    direction: str
    count: int
    bytes: int
    total_ns: int = Field(description="sum of window-clipped copy durations")
    exposed_ns: int = Field(description="time these copies run while no kernel runs (their union)")
    bandwidth_gb_per_s: float | None = Field(description="bytes / copy time; None without bytes")
    pageable_count: int = 0
    link: str | None = Field(default=None, description="the link the copies cross")
    link_gb_per_s: float | None = Field(default=None, description="the link's peak (interconnects table)")
    link_ratio: float | None = Field(default=None, description="achieved / link peak")
    link_na_reason: str | None = None


class CollectiveTime(BaseModel):
    """Communication kernels of one (simplified) name."""

    collective: str
    count: int
    total_ns: int
    exposed_ns: int = Field(description="time these kernels run while no compute kernel runs")


class RangeTime(BaseModel):
    """Host-bucket time that falls inside ranges of one name (nested ranges each count it)."""

    name: str
    source: str
    host_ns: int


class HostBreakdown(BaseModel):
    """What the host did while the GPU had nothing to run (the ``host`` bucket)."""

    launch_ns: int | None = Field(description="inside a kernel-launch API call")
    sync_ns: int | None = Field(description="inside a synchronising or blocking API call")
    other_api_ns: int | None = Field(description="inside another CUDA/HIP API call")
    no_api_ns: int | None = Field(description="in no API call: Python / framework / scheduler time")
    na_reason: str | None = Field(default=None, description="why the API split is not applicable")
    ranges: list[RangeTime] = Field(default_factory=list, description="ranges open then, top 5")


class OutsideKernelWindow(BaseModel):
    """GPU activity the kernel window (first to last kernel) leaves out: nothing is cut silently."""

    kernel_window_ns: int = Field(description="first kernel start to last kernel end (0: no kernels)")
    kernel_window_idle_ratio: float | None = Field(
        description="idle inside the kernel window: the figure HTA and nsys-stats SQL give"
    )
    copies: int = Field(description="memcpy/memset rows ending before or starting after the kernel window")
    copy_ns: int = Field(description="their union length outside the kernel window")
    launch_calls: int = Field(description="launch API calls of this device outside the kernel window")


class AttributionPart(BaseModel):
    """The attribution of one stretch of time (a phase or a step of one device)."""

    phase: str
    step: int | None = None
    window_ns: int
    times_ns: BucketShares
    shares: BucketShares
    primary: str
    margin: float = Field(description="primary share minus the second largest share")


class DeviceAttribution(BaseModel):
    """Where every nanosecond of one device's activity window went (docs/methodology.md §3.2)."""

    trace: str
    rank: int | None
    device: int
    gpu_name: str | None = None
    window_start_ns: int
    window_end_ns: int
    window_ns: int = Field(description="activity window: first to last kernel, memcpy or memset")
    window_source: str = Field(description="'activity' or 'nvtx:<regex>'")
    times_ns: BucketShares
    shares: BucketShares
    primary: str = Field(description="gpu | communication | copy | host: the largest share")
    second: str
    margin: float
    confidence: str = Field(description="high | medium | low, from the margin")
    gpu_categories: list[CategoryTime] = Field(default_factory=list)
    copy_directions: list[CopyDirectionTime] = Field(default_factory=list)
    collectives: list[CollectiveTime] = Field(default_factory=list)
    host: HostBreakdown
    outside_kernel_window: OutsideKernelWindow
    phases: list[AttributionPart] = Field(default_factory=list)
    steps: list[AttributionPart] = Field(default_factory=list, description="per step (first 256 steps)")


class PhaseBottleneck(BaseModel):
    """The primary bottleneck of one phase, over all devices."""

    phase: str
    window_ns: int
    shares: BucketShares
    primary: str
    margin: float
    confidence: str


class PrimaryBottleneck(BaseModel):
    """The verdict: the largest bucket of the run's device time, and how sure it is."""

    bucket: str = Field(description="gpu | communication | copy | host")
    share: float
    second: str
    second_share: float
    margin: float
    confidence: str = Field(description="high | medium | low")
    confidence_reason: str
    headline: str = Field(description="one sentence: the bucket, its share, what fills it")
    shares: BucketShares = Field(description="over all devices: summed bucket time / summed windows")
    devices: int
    devices_disagreeing: int = Field(description="devices whose own primary bucket differs")
    phases: list[PhaseBottleneck] = Field(default_factory=list)


class GlobalProfile(BaseModel):
    """Everything ``infersight analyze`` computes (methodology §3), before rules."""

    traces: list[TraceSummary]
    devices: list[DeviceTimeline]
    total: DeviceTimeline
    kernels: list[KernelStat]
    categories: list[CategoryStat]
    ranges: list[RangeStat]
    phases: PhaseSplit
    time_attribution: list[DeviceAttribution] = Field(
        default_factory=list, description="per device: the activity window split into the four buckets"
    )
    primary_bottleneck: PrimaryBottleneck | None = Field(
        default=None, description="the largest bucket of the run; None without GPU activity"
    )
