"""Typed results of the overlap analyses (copy/compute, comm/compute, multi-rank view).

All times are int64 nanoseconds (``*_ns``), ratios are fractions, bandwidths GB/s (1e9 B/s).
A metric the trace cannot give is ``None`` with a ``*_na_reason`` next to it, never 0.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from infersight.analyses.results import Window
from infersight.hardware.links import LinkSpec
from infersight.rules.finding import Finding

# MAJOR.MINOR of the overlap/ranks JSON: a new optional field bumps the minor, a breaking change the major.
OVERLAP_SCHEMA_VERSION = "1.0"  # 1.0: was "1"


class CopyDirectionStat(BaseModel):
    """Copies of one direction (HtoD, DtoH, DtoD, PtoP, other) on one device in its window."""

    direction: str
    count: int
    bytes: int
    time_ns: int = Field(description="sum of copy durations (whole copies that start in the window)")
    busy_ns: int = Field(description="union of the copy intervals, clipped to the window")
    hidden_ns: int = Field(description="part of busy_ns during which a compute kernel runs on the device")
    exposed_ns: int
    pageable_count: int
    pageable_time_ns: int
    achieved_gb_per_s: float | None = None
    link: LinkSpec | None = None
    link_ratio: float | None = None
    link_na_reason: str | None = None


class CopyOverlap(BaseModel):
    """Copy/compute overlap of one device inside its analysis window.

    hidden_ratio = hidden / copy busy; serial_efficiency = (serial − actual) / serial with
    serial = copy busy + compute busy and actual = busy of (copy ∪ compute): 0 when nothing
    overlaps, at most min/(copy+compute) when the shorter one is fully hidden.
    """

    trace: str
    rank: int | None
    device: int
    gpu_name: str | None
    window: Window
    wall_ns: int
    compute_busy_ns: int
    copy_busy_ns: int
    copy_time_ns: int
    copy_bytes: int
    hidden_ns: int
    exposed_ns: int
    hidden_ratio: float | None
    exposed_ratio: float | None = Field(description="exposed copy time / window wall time")
    serial_efficiency: float | None
    directions: list[CopyDirectionStat]
    na_reason: str | None = Field(None, description="why there is nothing to measure (no copies)")


class RangeOverlap(BaseModel):
    """Load (copy) vs compute of the instances of one NVTX/annotation range name.

    Per instance the GPU span it stands for (GPU range: itself; host range: first start to last
    end of the work launched from it) is ``actual``; copy/compute are the device's copies and
    compute kernels inside that span; serial = copy busy + compute busy; efficiency =
    (serial − actual) / serial — negative when the span is longer than doing its load and compute
    back to back (stalls, synchronous copies, waiting for a load, communication).
    """

    name: str
    source: str
    instances: int
    copy_ns: int = Field(description="Σ per instance of the copy union")
    compute_ns: int
    hidden_ns: int
    exposed_copy_ns: int
    actual_ns: int = Field(description="Σ per instance of the GPU span of the range's work")
    copy_bytes: int
    load_compute_ratio: float | None
    hidden_ratio: float | None
    serial_efficiency: float | None
    pageable_count: int
    attribution: str = Field(
        description="'launch' (host range projected by correlation) or 'time' (GPU range)"
    )


class CollectiveStat(BaseModel):
    """Communication kernels of one collective type on one device."""

    collective: str
    algorithm: str | None = Field(None, description="RING / TREE / NVLS / ... from the kernel name")
    protocol: str | None = None
    count: int
    time_ns: int
    mean_ns: float
    message_bytes: int | None = None
    group_size: int | None = None
    algbw_gb_per_s: float | None = None
    busbw_gb_per_s: float | None = None
    busbw_factor: float | None = None
    link: LinkSpec | None = None
    link_ratio: float | None = None
    size_na_reason: str | None = None
    size_source: str | None = None  # where the message sizes came from


class CommOverlap(BaseModel):
    """Communication/computation overlap of one device (one rank) in its window."""

    trace: str
    rank: int | None
    device: int
    gpu_name: str | None
    wall_ns: int
    active_ns: int = Field(description="union of all kernels (GPU active time)")
    comm_kernel_count: int
    comm_time_ns: int = Field(description="Σ NCCL kernel durations clipped to the window")
    comm_busy_ns: int
    overlapped_ns: int = Field(description="part of comm busy during which a compute kernel runs")
    exposed_ns: int
    overlap_ratio: float | None
    exposed_ratio: float | None = Field(description="exposed comm / wall")
    m5_nccl_ratio: float | None = Field(description="methodology §4 M5: NCCL kernel time / GPU active time")
    collectives: list[CollectiveStat]
    na_reason: str | None = None


class RankRow(BaseModel):
    """One participant (rank, or device of a multi-GPU trace) of the multi-rank view."""

    label: str
    rank: int
    trace: str
    device: int
    wall_ns: int
    busy_ns: int
    idle_ratio: float
    compute_ns: int
    comm_ns: int
    exposed_comm_ns: int
    clock_offset_ns: int | None = Field(description="added to this rank's times to align it to the reference")
    collectives_matched: int
    wait_ns: int | None = Field(description="Σ (latest aligned start − own start) over matched collectives")
    late_count: int | None = Field(None, description="collectives at which this rank arrived last")
    late_mean_ns: float | None = Field(None, description="mean (own start − earliest start)")
    moe_kernel_ns: int = 0
    all_to_all_bytes: int | None = None


class MultiRankView(BaseModel):
    """The per-rank table, clock alignment, collective waits and stragglers of a rank set."""

    ranks: list[RankRow]
    world_size: int | None
    missing_ranks: list[int]
    alignment_method: str
    alignment_ok: bool
    alignment_note: str | None = None
    step_ns: int | None = Field(None, description="median step duration used to judge clock offsets")
    matched_collectives: int
    straggler_rank: int | None = None
    waits_rough: bool = Field(False, description="kernels do not pair up one to one: waits are rough")
    notes: list[str] = Field(default_factory=list)


class OverlapReport(BaseModel):
    """Everything ``infersight overlap`` computes, plus the findings."""

    schema_version: str = OVERLAP_SCHEMA_VERSION
    tool_version: str
    copies: list[CopyOverlap]
    ranges: list[RangeOverlap]
    range_regex: str | None = None
    comm: list[CommOverlap]
    multi_rank: MultiRankView | None = None
    findings: list[Finding]
    notes: list[str] = Field(default_factory=list)
