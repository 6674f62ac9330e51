"""Report sections as rows of formatted strings, shared by the terminal and Markdown renderers.

Only formatting happens here: every number comes from the :class:`AnalysisReport`; nothing is
computed from the trace. Keeping the cell text in one place means the terminal and the Markdown
report always show identical figures. Multi-line cells use ``\\n``; each renderer adapts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infersight.analyses.results import (
    CategoryStat,
    DeviceTimeline,
    GapBucket,
    KernelStat,
    PhaseStat,
    RangeStat,
)
from infersight.analysis_report import AnalysisReport
from infersight.rules.finding import Evidence, ExpectedGain, Finding, Location
from infersight.units import (
    fmt_bandwidth,
    fmt_bound,
    fmt_bytes,
    fmt_count,
    fmt_duration,
    fmt_pct,
    fmt_quantity,
)


@dataclass
class Section:
    """A titled table: column headers, rows of cells, and optional notes printed under it."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    right_aligned: set[int] = field(default_factory=set)
    wrapping: set[int] = field(default_factory=set)  # text columns that may wrap; the rest never do
    empty_reason: str = ""  # why the table has no rows, when that is worth saying


# ---------------------------------------------------------------- units
# The number formatters live in :mod:`infersight.units` (the rules' messages use them too);
# re-exported here for the renderers.


def fmt_gpu_names(names: list[str]) -> str:
    """Distinct GPU names with their multiplicity: 'NVIDIA H100 80GB HBM3 ×8'."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} ×{c}" if c > 1 else n for n, c in counts.items()) or "-"


def short_source(source: str) -> str:
    """The file name part of a source path (reports stay readable with long paths)."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- sections


def has_cpu_capture(report: AnalysisReport) -> bool:
    """True when any input is a CPU-only capture (CPU operators stand in for kernels)."""
    return any(t.device_kind == "cpu" for t in report.profile.traces)


CPU_CAPTURE_WARNING = (
    "CPU capture: no GPU kernels were recorded; dominant CPU operators stand in for GPU kernels, "
    "so 'kernel', 'busy' and 'idle' figures describe CPU operator time, not a GPU."
)


def traces_section(report: AnalysisReport) -> Section:
    """What was read: one row per input trace."""
    rows = [
        [
            short_source(t.source),
            t.format,
            "-" if t.rank is None else str(t.rank),
            t.device_kind,
            fmt_gpu_names(t.gpus),
            fmt_count(t.kernels),
            fmt_count(t.memcpy),
            fmt_count(t.memset),
            fmt_count(t.api_calls),
            fmt_count(t.ranges),
        ]
        for t in report.profile.traces
    ]
    notes = [f"{short_source(t.source)}: {note}" for t in report.profile.traces for note in t.notes]
    headers = ["trace", "format", "rank", "device", "GPUs", "kernels", "memcpy", "memset", "API", "ranges"]
    return Section("Traces read", headers, rows, notes, right_aligned={5, 6, 7, 8, 9}, wrapping={0, 4})


def _launch_cells(timeline: DeviceTimeline) -> list[str]:
    """Launch overhead ratio and 'calls / time', or 'n/a: reason' when the trace has no API events."""
    if timeline.launch_overhead_ratio is None:
        return ["n/a", "-"]
    calls = f"{fmt_count(timeline.launch_api_count)} / {fmt_duration(timeline.launch_api_ns)}"
    return [fmt_pct(timeline.launch_overhead_ratio), calls]


def na_notes(metric: str, reasons: list[tuple[str, str]]) -> list[str]:
    """One note per distinct reason why ``metric`` is n/a, naming where: 'metric n/a (dev 0): why'."""
    by_reason: dict[str, list[str]] = {}
    for where, reason in reasons:
        by_reason.setdefault(reason, []).append(where)
    return [f"{metric} n/a ({', '.join(where)}): {reason}" for reason, where in by_reason.items()]


def _device_label(timeline: DeviceTimeline) -> str:
    if timeline.device is None:
        return "all devices"
    rank = f"rank {timeline.rank} " if timeline.rank is not None else ""
    return f"{rank}dev {timeline.device}"


def _window_cell(timeline: DeviceTimeline) -> str:
    count = len(timeline.window.intervals_ns)
    return timeline.window.source + (f" ({count} ranges)" if count > 1 else "")


def _timelines(report: AnalysisReport) -> list[DeviceTimeline]:
    """Each device, then the total over devices when there is more than one."""
    timelines = list(report.profile.devices)
    if len(timelines) != 1:
        timelines.append(report.profile.total)
    return timelines


def devices_section(report: AnalysisReport) -> Section:
    """Per-device utilisation (methodology §3): wall, busy, idle, utilisation, launch overhead."""
    rows = [
        [
            _device_label(tl),
            tl.gpu_name or "-",
            _window_cell(tl),
            fmt_duration(tl.wall_ns),
            fmt_duration(tl.busy_ns),
            fmt_pct(tl.idle_ratio),
            fmt_pct(tl.utilization),
            fmt_count(tl.kernel_count),
            fmt_duration(tl.kernel_time_ns),
            *_launch_cells(tl),
        ]
        for tl in _timelines(report)
    ]
    headers = [
        "device",
        "GPU",
        "window",
        "wall",
        "busy",
        "idle",
        "util",
        "kernels",
        "kernel time",
        "launch %",
        "launch calls",
    ]
    notes = [
        "busy = union of kernel intervals in the window (concurrent kernels count once); "
        "idle = 1 - busy / wall; launch % = time in launch API calls / wall (launch overhead); "
        "launch calls = count / total time."
    ]
    notes += na_notes(
        "launch overhead",
        [
            (_device_label(tl), tl.launch_overhead_na_reason or "not measured")
            for tl in _timelines(report)
            if tl.launch_overhead_ratio is None
        ],
    )
    return Section("Devices", headers, rows, notes, right_aligned={3, 4, 5, 6, 7, 8, 9, 10}, wrapping={1, 2})


def transfers_section(report: AnalysisReport) -> Section:
    """Memcpy by direction and memset per device: count, bytes, time, bandwidth, pageable copies."""
    rows = [
        [
            _device_label(tl),
            stat.direction,
            fmt_count(stat.count),
            fmt_bytes(stat.bytes),
            fmt_duration(stat.total_ns),
            fmt_bandwidth(stat.bandwidth_gb_per_s),
            fmt_count(stat.pageable_count),
        ]
        for tl in report.profile.devices
        for stat in tl.transfers
    ]
    headers = ["device", "direction", "count", "bytes", "time", "bandwidth", "pageable"]
    notes = ["bandwidth = bytes / copy time; a pageable host buffer makes an 'async' copy synchronous."]
    return Section("Memcpy / memset", headers, rows, notes, right_aligned=set(range(2, 7)))


def _stat_cells(stat: KernelStat | CategoryStat) -> list[str]:
    return [
        fmt_pct(stat.share),
        fmt_duration(stat.total_ns),
        fmt_count(stat.count),
        fmt_duration(stat.avg_ns),
        fmt_duration(stat.median_ns),
        fmt_duration(stat.min_ns),
        fmt_duration(stat.max_ns),
        fmt_duration(stat.std_ns),
    ]


STAT_HEADERS = ["time %", "total", "count", "avg", "median", "min", "max", "std"]


def categories_section(report: AnalysisReport) -> Section:
    """Operator-category ranking by total kernel time."""
    rows = [
        [c.category, *_stat_cells(c), "\n".join(c.top_kernels[:2]) or "-"] for c in report.profile.categories
    ]
    return Section(
        "Operator categories",
        ["category", *STAT_HEADERS, "top kernels"],
        rows,
        right_aligned=set(range(1, 9)),
        wrapping={9},
    )


def kernels_section(report: AnalysisReport, top: int) -> Section:
    """Top-N kernels by total time, like ``nsys stats -r cuda_gpu_kern_sum``."""
    kernels = report.profile.kernels
    rows = [[*_stat_cells(k), k.category, k.name] for k in kernels[:top]]
    notes = []
    if len(kernels) > top:
        rest = kernels[top:]
        notes.append(
            f"{len(rest)} more kernel names ({fmt_pct(sum(k.share for k in rest))} of kernel time) "
            "not shown; raise --top to see them."
        )
    return Section(
        f"Top {min(top, len(kernels))} kernels (of {len(kernels)})",
        [*STAT_HEADERS, "category", "name"],
        rows,
        notes,
        right_aligned=set(range(0, 8)),
        wrapping={9},
    )


def _projection_cells(stat: RangeStat) -> list[str]:
    if stat.gpu_kernel_count is None:
        return ["n/a", "n/a", "n/a"]
    return [fmt_count(stat.gpu_kernel_count), fmt_duration(stat.gpu_time_ns), fmt_duration(stat.gpu_busy_ns)]


def ranges_section(report: AnalysisReport, top: int) -> Section:
    """NVTX / annotation ranges (like ``nsys stats -r nvtx_sum``) with their GPU projection."""
    ranges = report.profile.ranges
    rows = [
        [
            r.name,
            r.domain or "-",
            r.source,
            fmt_count(r.count),
            fmt_duration(r.total_ns),
            fmt_duration(r.avg_ns),
            fmt_duration(r.median_ns),
            fmt_duration(r.min_ns),
            fmt_duration(r.max_ns),
            fmt_duration(r.std_ns),
            *_projection_cells(r),
        ]
        for r in ranges[:top]
    ]
    notes = []
    if len(ranges) > top:
        notes.append(f"{len(ranges) - top} more range names not shown; raise --top to see them.")
    notes.append("GPU projection: kernels launched from the range's thread while it was open.")
    notes += na_notes(
        "GPU projection",
        [
            (r.name, r.projection_na_reason or "not projected")
            for r in ranges[:top]
            if r.gpu_kernel_count is None
        ],
    )
    headers = [
        "range",
        "domain",
        "source",
        "count",
        "total",
        "avg",
        "median",
        "min",
        "max",
        "std",
        "GPU kernels",
        "GPU time",
        "GPU busy",
    ]
    section = Section(
        f"NVTX / annotation ranges (top {min(top, len(ranges))} of {len(ranges)})",
        headers,
        rows,
        notes,
        right_aligned=set(range(3, 13)),
        wrapping={0, 2},
    )
    if all(row[1] == "-" for row in rows):  # no NVTX domains (always so for Kineto): save the width
        section = drop_column(section, 1)
    return section


def drop_column(section: Section, index: int) -> Section:
    """The section without one column (alignment/wrapping indices shifted)."""

    def shift(indices: set[int]) -> set[int]:
        return {i - (i > index) for i in indices if i != index}

    return Section(
        section.title,
        section.headers[:index] + section.headers[index + 1 :],
        [row[:index] + row[index + 1 :] for row in section.rows],
        section.notes,
        shift(section.right_aligned),
        shift(section.wrapping),
    )


def phases_section(report: AnalysisReport) -> Section:
    """Prefill vs decode, with how the split was decided."""
    split = report.profile.phases
    rows = [
        [
            p.phase,
            fmt_count(p.steps),
            fmt_duration(p.wall_ns),
            fmt_duration(p.busy_ns),
            fmt_pct(p.idle_ratio),
            fmt_count(p.kernel_count),
            fmt_duration(p.kernel_time_ns),
            fmt_duration(p.avg_kernel_ns),
            _phase_launch_cell(p),
            "n/a" if p.graph_coverage is None else fmt_pct(p.graph_coverage),
            ", ".join(f"{c.category} {fmt_pct(c.share)}" for c in p.top_categories[:3]) or "-",
        ]
        for p in split.phases
    ]
    headers = [
        "phase",
        "steps",
        "wall",
        "busy",
        "idle",
        "kernels",
        "kernel time",
        "avg kernel",
        "launch %",
        "graph %",
        "top categories",
    ]
    return Section(
        "Prefill vs decode",
        headers,
        rows,
        [
            f"method: {split.method} — {split.reason}",
            *na_notes(
                "launch overhead",
                [
                    (p.phase, p.launch_overhead_na_reason or "not measured")
                    for p in split.phases
                    if p.launch_overhead_ratio is None
                ],
            ),
        ],
        right_aligned=set(range(1, 10)),
        wrapping={10},
        empty_reason=f"{split.method}: {split.reason}" if split.reason else "",
    )


def _phase_launch_cell(phase: PhaseStat) -> str:
    if phase.launch_overhead_ratio is None:
        return "n/a"
    return fmt_pct(phase.launch_overhead_ratio)


def _bucket_label(bucket: GapBucket) -> str:
    if bucket.upper_ns is None:
        return f"≥ {fmt_bound(bucket.lower_ns)}"
    if bucket.lower_ns == 0:
        return f"< {fmt_bound(bucket.upper_ns)}"
    return f"{fmt_bound(bucket.lower_ns)}–{fmt_bound(bucket.upper_ns)}"


def _bucket_cells(buckets: list[GapBucket], labels: list[str]) -> list[str]:
    by_label = {_bucket_label(b): b for b in buckets}
    cells = []
    for label in labels:
        bucket = by_label.get(label)
        cells.append(
            "-" if bucket is None else f"{fmt_count(bucket.count)} / {fmt_duration(bucket.total_ns)}"
        )
    return cells


def gaps_section(report: AnalysisReport) -> Section:
    """Idle gaps between kernel busy blocks by length bucket (methodology §4), per device and phase."""
    sources: list[tuple[str, list[GapBucket]]] = [
        (_device_label(tl), tl.gap_buckets) for tl in report.profile.devices if tl.gap_buckets
    ]
    sources += [(f"phase {p.phase}", p.gap_buckets) for p in report.profile.phases.phases if p.gap_buckets]
    labels: list[str] = []
    for _, buckets in sources:
        labels += [label for label in map(_bucket_label, buckets) if label not in labels]
    rows = [[name, *_bucket_cells(buckets, labels)] for name, buckets in sources]
    notes = ["each cell: number of idle gaps / their total length; short gaps point at launch/host overhead"]
    return Section(
        "Idle gaps between kernels", ["where", *labels], rows, notes, set(range(1, len(labels) + 1))
    )


# ---------------------------------------------------------------- findings


def fmt_location(location: Location, origin_ns: int | None = None) -> str:
    """Where a finding applies: 'phase: decode' or 'device: rank 0, dev 1, t=[t0, t1] ns (261 ms)'.

    With ``origin_ns`` (the trace start) the time range reads relative to it:
    't=+1.2 ms … +262 ms from the trace start (261 ms)'.
    """
    parts: list[str] = []
    if location.rank is not None:
        parts.append(f"rank {location.rank}")
    if location.device is not None:
        parts.append(f"dev {location.device}")
    for label, value in (
        ("phase", location.phase),
        ("category", location.category),
        ("kernel", location.kernel),
        ("range", location.range_name),
    ):
        if value:
            parts.append(value if label == location.scope else f"{label} {value}")
    if location.time_range_ns is not None:
        start, end = location.time_range_ns
        if origin_ns is None:
            parts.append(f"t=[{start}, {end}] ns ({fmt_duration(end - start)})")
        else:
            parts.append(
                f"t={_signed_duration(start - origin_ns)} … {_signed_duration(end - origin_ns)} "
                f"from the trace start ({fmt_duration(end - start)})"
            )
    return f"{location.scope}" + (f": {', '.join(parts)}" if parts else "")


def _signed_duration(ns: int) -> str:
    return ("+" if ns >= 0 else "−") + fmt_duration(abs(ns))


def fmt_evidence(evidence: Evidence) -> str:
    """'metric = value (threshold > t)' with both numbers in the evidence's unit."""
    text = f"{evidence.metric} = {fmt_quantity(evidence.value, evidence.unit)}"
    if evidence.threshold is not None:
        comparison = evidence.comparison or "vs"
        text += f" (threshold {comparison} {fmt_quantity(evidence.threshold, evidence.unit)})"
    if evidence.note:
        text += f" — {evidence.note}"
    return text


def fmt_gain(gain: ExpectedGain | None) -> str:
    """Expected gain range as percentages of wall (or kernel) time, with its basis."""
    if gain is None:
        return "not estimated"
    of_what = "wall time" if gain.unit == "fraction_of_wall_time" else "kernel time"
    return f"{fmt_pct(gain.low)}–{fmt_pct(gain.high)} of {of_what} ({gain.basis})"


SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def ordered_findings(findings: list[Finding]) -> list[Finding]:
    """The order to show findings in.

    An analyze report's findings name the wall-time bucket they address and come from the rule
    engine already ordered: the primary bottleneck's findings first, then by expected gain
    (docs/methodology.md §3.2); that order is kept. Other lists (overlap, ncu): critical first,
    then warnings, then info, the engine's order within a severity.
    """
    if any(f.bucket is not None for f in findings):
        return list(findings)
    return sorted(findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
