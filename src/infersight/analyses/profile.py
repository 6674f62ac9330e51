"""The global profile (methodology §3): every analysis of ``infersight analyze`` in one call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from infersight.analyses.attribution import trace_attribution
from infersight.analyses.bottleneck import primary_bottleneck
from infersight.analyses.category_summary import category_summary
from infersight.analyses.kernel_summary import kernel_summary, windowed_kernels
from infersight.analyses.phases import label_trace, phase_split
from infersight.analyses.ranges import range_summary
from infersight.analyses.results import (
    CategoryStat,
    DeviceTimeline,
    GlobalProfile,
    KernelStat,
    RangeStat,
    TraceSummary,
    Window,
)
from infersight.analyses.timeline import device_timeline, total_timeline
from infersight.analyses.window import analysis_windows
from infersight.errors import InputError
from infersight.model import Trace

NO_KERNELS = "no GPU kernels in the trace: nothing to profile (was CUDA/HIP activity traced?)"


def build_global_profile(traces: list[Trace], *, window_nvtx: str | None = None) -> GlobalProfile:
    """Timelines per device and in total, kernel/category/range rankings and the phase split.

    Raises InputError when no trace has GPU kernels (nothing to profile) or the window regex
    matches no range.
    """
    if not traces:
        raise InputError(None, "no traces to analyse")
    if all(t.kernels.empty for t in traces):
        names = ", ".join(t.source for t in traces)
        raise InputError(names, NO_KERNELS)
    windows = [analysis_windows(t, window_nvtx) if not t.kernels.empty else {} for t in traces]
    # The range summary, the device timelines and the kernel/category rankings need nothing the
    # phase labels and the attribution compute; they run on a second thread beside them. Both
    # halves are mostly numpy sorts, searches and gathers, which release the GIL, so a second
    # core takes one (with the ~5 NVTX ranges per kernel of a PyTorch export: 13.5 -> 5.5-6 s for
    # 1M kernels on two cores, the same CPU time).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="infersight-profile") as pool:
        beside = pool.submit(_beside_the_attribution, traces, windows)
        labelled = [label_trace(t, w) for t, w in zip(traces, windows, strict=True)]
        attribution = [
            device
            for trace, per_device, labels in zip(traces, windows, labelled, strict=True)
            for device in trace_attribution(trace, window_nvtx, windows=per_device, labelled=labels)
        ]
        phases = phase_split(traces, windows, labelled)
        range_stats, devices, kernel_stats, category_stats = beside.result()
    return GlobalProfile(
        traces=[trace_summary(t) for t in traces],
        devices=devices,
        total=total_timeline(devices),
        kernels=kernel_stats,
        categories=category_stats,
        ranges=range_stats,
        phases=phases,
        time_attribution=attribution,
        primary_bottleneck=primary_bottleneck(attribution),
    )


def _beside_the_attribution(
    traces: list[Trace], windows: list[dict[int, Window]]
) -> tuple[list[RangeStat], list[DeviceTimeline], list[KernelStat], list[CategoryStat]]:
    """The second thread's share of a profile: range summary, device timelines, kernel rankings."""
    range_stats = range_summary(traces)
    devices = [
        device_timeline(trace, device, window)
        for trace, per_device in zip(traces, windows, strict=True)
        for device, window in per_device.items()
    ]
    kernels = windowed_kernels(traces, windows)
    return range_stats, devices, kernel_summary(kernels), category_summary(kernels)


def trace_summary(trace: Trace) -> TraceSummary:
    return TraceSummary(
        source=trace.source,
        format=trace.format,
        rank=trace.rank,
        device_kind=trace.device_kind,
        gpus=[g.name or f"device {d}" for d, g in sorted(trace.gpus.items())],
        kernels=len(trace.kernels),
        memcpy=len(trace.memcpy),
        memset=len(trace.memset),
        api_calls=len(trace.api),
        ranges=len(trace.ranges),
        notes=list(trace.notes),
    )
