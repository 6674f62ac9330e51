"""Per-device time-based utilisation (methodology §3): busy, idle ratio, launch overhead, transfers,
and CUDA-graph coverage (methodology §4: eager vs graph kernels).

Busy time is the union of kernel intervals inside the window, so concurrent kernels on several
streams count once; kernel_time is the plain sum of (window-clipped) durations, so the two differ
exactly by the concurrency. The launch-overhead ratio charges a device with the launch calls
whose correlation id (joined with the process) matches one of its kernels.

Graph coverage says how much of that work CUDA graphs already replay, so launch-bound advice
can point at the eager remainder instead of recommending graphs to a run that uses them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from infersight.analyses import intervals
from infersight.analyses.kernel_names import simplify_names
from infersight.analyses.launches import (
    first_match,
    graph_coverage_na_reason,
    graph_kernel_mask,
    trace_launch_calls,
)
from infersight.analyses.results import (
    DeviceTimeline,
    EagerKernelStat,
    GapBucket,
    GraphCoverage,
    TransferStat,
    Window,
)
from infersight.analyses.window import analysis_windows, window_arrays
from infersight.model import Trace
from infersight.model.arrays import sorted_contains

# Gap buckets of the methodology §4 kernel-level drill-down, in ns: <5 µs, 5-20, 20-100, 100 µs-1 ms, >1 ms.
GAP_BUCKET_EDGES_NS: tuple[int, ...] = (0, 5_000, 20_000, 100_000, 1_000_000)
PAGEABLE = "pageable"
CPU_DEVICE_KIND = "cpu"  # Trace.device_kind of a CPU-only capture read with --cpu-ops-as-kernels
TOP_EAGER_KERNELS = 5
CORRELATION_SAMPLE = 4096  # kernels tried first when checking that kernels correlate with API calls


def device_timelines(trace: Trace, window_nvtx: str | None = None) -> list[DeviceTimeline]:
    """One timeline per device of the trace that ran kernels."""
    windows = analysis_windows(trace, window_nvtx)
    return [device_timeline(trace, device, window) for device, window in windows.items()]


def device_timeline(trace: Trace, device: int, window: Window) -> DeviceTimeline:
    """Busy/idle/launch/transfer metrics of one device inside its window."""
    win = window_arrays(window)
    k = trace.kernels
    k = k[k["device"].to_numpy() == device]
    ks, ke = k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64)
    in_window = intervals.overlaps_any(ks, ke, win)
    busy_s, busy_e = intervals.clip(ks, ke, win)
    wall = window.duration_ns
    busy = int((busy_e - busy_s).sum())
    idle = wall - busy
    idle_ratio = idle / wall if wall > 0 else 0.0
    launch_count, launch_ns, launch_reason = _launch_overhead(trace, device, win)
    clipped = intervals.overlap_lengths(ks, ke, win)
    windowed = k[in_window].assign(duration=clipped[in_window])
    is_graph = graph_kernel_mask(trace, windowed)
    coverage = graph_coverage_from_masks([(trace, windowed, is_graph)])
    eager_buckets = (
        None
        if coverage.graph_coverage is None
        else eager_gap_buckets(ks[in_window], ke[in_window], is_graph, win, busy_s, busy_e)
    )
    gpu = trace.gpus.get(device)
    return DeviceTimeline(
        trace=trace.source,
        rank=trace.rank,
        device=device,
        gpu_name=gpu.name if gpu else None,
        window=window,
        wall_ns=wall,
        busy_ns=busy,
        idle_ns=idle,
        idle_ratio=idle_ratio,
        utilization=1.0 - idle_ratio,
        kernel_count=int(in_window.sum()),
        kernel_time_ns=int(clipped.sum()),
        launch_api_count=launch_count,
        launch_api_ns=launch_ns,
        launch_overhead_ratio=(launch_ns / wall if launch_ns is not None and wall > 0 else None),
        launch_overhead_na_reason=launch_reason,
        transfers=_transfers(trace, device, win),
        gap_buckets=gap_buckets(busy_s, busy_e, win),
        eager_gap_buckets=eager_buckets,
        **coverage.model_dump(),
    )


def graph_coverage(parts: Sequence[tuple[Trace, pd.DataFrame]]) -> GraphCoverage:
    """Graph coverage of some kernels of one or more traces (e.g. one phase's kernels).

    Each part is a trace and a row subset of its kernels with ``process``, ``correlation``,
    ``name`` and either ``duration`` or ``start``/``end`` columns (``graph_id`` optional).
    Coverage is not applicable when any part cannot tell graph from eager kernels (a partial
    answer would understate it). phases.py can fill PhaseStat with::

        **graph_coverage(
            [(lab.trace, lab.kernels[lab.kernels["phase"].to_numpy() == phase]) for lab in labelled]
        ).model_dump()
    """
    return graph_coverage_from_masks(
        [(trace, kernels, graph_kernel_mask(trace, kernels)) for trace, kernels in parts]
    )


def graph_coverage_from_masks(parts: Sequence[tuple[Trace, pd.DataFrame, np.ndarray]]) -> GraphCoverage:
    """:func:`graph_coverage` for kernels whose graph mask (:func:`graph_kernel_mask`) the caller
    already has, so big kernel tables are joined to their launches once."""
    parts = [(trace, kernels, mask) for trace, kernels, mask in parts if not kernels.empty]
    if not parts:
        return GraphCoverage(graph_coverage_na_reason="no kernels")
    reasons = [
        f"{trace.label()}: {reason}" if len(parts) > 1 else reason
        for trace, kernels, mask in parts
        if (reason := coverage_na_reason(trace, kernels, mask)) is not None
    ]
    if reasons:
        return GraphCoverage(graph_coverage_na_reason="; ".join(reasons))
    total = graph_count = graph_ns = launches = 0
    eager: list[pd.DataFrame] = []
    for _trace, kernels, mask in parts:
        durations = kernel_durations(kernels)
        total += len(kernels)
        graph_count += int(mask.sum())
        graph_ns += int(durations[mask].sum())
        replays = kernels.loc[mask, ["process", "correlation"]]
        launches += len(replays[replays["correlation"].to_numpy() >= 0].drop_duplicates())
        eager.append(time_by_name(kernels["name"].array[~mask], durations[~mask]))
    return GraphCoverage(
        graph_kernel_count=graph_count,
        graph_kernel_time_ns=graph_ns,
        graph_coverage=graph_count / total,
        graph_launch_count=launches,
        top_eager_kernels=top_eager_kernels(pd.concat(eager, ignore_index=True)),
    )


def coverage_na_reason(trace: Trace, kernels: pd.DataFrame, is_graph: np.ndarray) -> str | None:
    """Why graph coverage is not applicable (None: it is); a CPU capture has no CUDA graphs.

    Coverage is applicable when graph kernels were recognised, or when some kernel correlates
    with a recorded API call. The full check joins every kernel with the deduplicated API
    table (seconds for a million rows), so a correlating kernel is first looked for among the
    first rows: finding one there settles it; only when none does, the full check runs.
    """
    if trace.device_kind == CPU_DEVICE_KIND:
        return "CPU capture: operators run on host threads, there are no CUDA graphs"
    if bool(is_graph.any()) or _some_kernel_correlates(trace, kernels.iloc[:CORRELATION_SAMPLE]):
        return None
    return graph_coverage_na_reason(trace, kernels)


def _some_kernel_correlates(trace: Trace, kernels: pd.DataFrame) -> bool:
    """Does one of these (few) kernels share (process, correlation) with an API call?"""
    api = trace.api
    if api.empty or kernels.empty:
        return False
    near = api[np.isin(api["correlation"].to_numpy(), kernels["correlation"].to_numpy())]
    matched = first_match(kernels["process"], kernels["correlation"], near["process"], near["correlation"])
    return bool((matched >= 0).any())


def kernel_durations(kernels: pd.DataFrame) -> np.ndarray:
    if "duration" in kernels.columns:
        return kernels["duration"].to_numpy(np.int64)
    return (kernels["end"] - kernels["start"]).to_numpy(np.int64)


def time_by_name(names: ExtensionArray | np.ndarray, durations: np.ndarray) -> pd.DataFrame:
    """count/total per full kernel name (a few hundred rows, whatever the kernel count).

    Pass the name column's ``.array`` (a Categorical): it is grouped on its codes, where an
    object array of a million strings would be hashed string by string (~1 s per million).
    """
    frame = pd.DataFrame({"name": pd.Categorical(names), "duration": durations})
    grouped = frame.groupby("name", observed=True)["duration"].agg(kernels="count", total_ns="sum")
    return grouped.reset_index().astype({"name": str})


def top_eager_kernels(per_name: pd.DataFrame) -> list[EagerKernelStat]:
    """Merge per-full-name totals under simplified names; the longest TOP_EAGER_KERNELS."""
    if per_name.empty:
        return []
    simple = simplify_names(pd.Categorical(per_name["name"]))
    merged = (
        per_name.assign(simple=np.asarray(simple, dtype=object))
        .groupby("simple")[["kernels", "total_ns"]]
        .sum()
        .reset_index()
        .sort_values(["total_ns", "kernels", "simple"], ascending=[False, False, True])
    )
    top = merged.head(TOP_EAGER_KERNELS)
    return [
        EagerKernelStat(name=str(name), count=int(count), total_ns=int(total))
        for name, count, total in zip(
            top["simple"].tolist(), top["kernels"].tolist(), top["total_ns"].tolist(), strict=True
        )
    ]


def eager_gap_buckets(
    starts: np.ndarray,
    ends: np.ndarray,
    is_graph: np.ndarray,
    win: tuple[np.ndarray, np.ndarray],
    busy_starts: np.ndarray,
    busy_ends: np.ndarray,
) -> list[GapBucket]:
    """Histogram of the idle gaps (inside the window, see :func:`window_gaps`) that an eager
    kernel ends or starts.

    A gap between busy blocks is next to an eager kernel exactly when the union of the eager
    kernels (clipped to the window) has a block ending where the gap starts or starting where
    it ends: nothing else runs at that instant. Those gaps are launch latency of eager work
    (or of the graph replay right after it), which widening graph capture removes; gaps inside
    a graph replay are not.
    """
    eager_s, eager_e = intervals.clip(starts[~is_graph], ends[~is_graph], win)
    gap_start, gap_end = window_gaps(busy_starts, busy_ends, win)
    return bucket_gaps((gap_end - gap_start)[next_to_eager(gap_start, gap_end, eager_s, eager_e)])


def next_to_eager(
    gap_start: np.ndarray, gap_end: np.ndarray, eager_starts: np.ndarray, eager_ends: np.ndarray
) -> np.ndarray:
    """Per idle gap: does an eager kernel end where it starts or start where it ends?

    The eager kernels are unioned first, so a block of overlapping eager kernels counts by its
    outer edges (the gaps are between busy blocks: nothing else runs at their edges).
    """
    es, ee = intervals.union(eager_starts, eager_ends)
    return sorted_contains(ee, gap_start) | sorted_contains(es, gap_end)


def _launch_overhead(
    trace: Trace, device: int, win: tuple[np.ndarray, np.ndarray]
) -> tuple[int | None, int | None, str | None]:
    """(count, window-clipped ns, reason-if-not-applicable) of this device's launch calls."""
    if trace.device_kind == CPU_DEVICE_KIND:
        return None, None, "CPU capture: operators run on host threads, there are no kernel launches"
    if trace.api.empty:
        return None, None, "the trace has no CUDA/HIP API calls (runtime/driver tracing was off)"
    calls = trace_launch_calls(trace)  # joined to kernels once per trace, not once per device
    if not len(calls.start):
        return (
            None,
            None,
            (
                f"the trace has {len(trace.api)} API calls but none is a kernel launch "
                "(cudaLaunchKernel, cudaGraphLaunch, hipLaunchKernel, ...)"
            ),
        )
    mine = (calls.device == device) | ((calls.device == -1) & calls.single_device)
    cs, ce = calls.start[mine], calls.end[mine]
    touching = intervals.overlaps_any(cs, ce, win)
    return int(touching.sum()), int(intervals.overlap_lengths(cs, ce, win).sum()), None


def window_gaps(
    busy_starts: np.ndarray, busy_ends: np.ndarray, win: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the idle gaps between consecutive busy blocks (unioned, sorted).

    With a window of several disjoint intervals (``--window-nvtx`` matching several ranges),
    only gaps lying wholly inside one window interval count: the stretch from the last kernel
    of one interval to the first of the next spans time outside the window, which is neither
    idle nor measured.
    """
    gap_start, gap_end = busy_ends[:-1], busy_starts[1:]
    if win is None or win[0].size <= 1:  # one interval holds every busy block: all gaps are inside
        return gap_start, gap_end
    inside = intervals.overlap_lengths(gap_start, gap_end, win) == gap_end - gap_start
    return gap_start[inside], gap_end[inside]


def gap_buckets(
    busy_starts: np.ndarray, busy_ends: np.ndarray, win: tuple[np.ndarray, np.ndarray] | None = None
) -> list[GapBucket]:
    """Histogram of idle gaps between consecutive busy blocks, inside the window's intervals."""
    gap_start, gap_end = window_gaps(busy_starts, busy_ends, win)
    return bucket_gaps(gap_end - gap_start)


def bucket_gaps(lengths: np.ndarray) -> list[GapBucket]:
    """Histogram of gap lengths (ns) over GAP_BUCKET_EDGES_NS."""
    edges = np.array(GAP_BUCKET_EDGES_NS, dtype=np.int64)
    which = np.searchsorted(edges, lengths, side="right") - 1
    buckets = []
    for i, lower in enumerate(GAP_BUCKET_EDGES_NS):
        sel = which == i
        upper = GAP_BUCKET_EDGES_NS[i + 1] if i + 1 < len(GAP_BUCKET_EDGES_NS) else None
        buckets.append(
            GapBucket(lower_ns=lower, upper_ns=upper, count=int(sel.sum()), total_ns=int(lengths[sel].sum()))
        )
    return buckets


def _transfers(trace: Trace, device: int, win: tuple[np.ndarray, np.ndarray]) -> list[TransferStat]:
    """Memcpy per direction plus memset, counting operations that start inside the window.

    Whole durations and bytes are kept (not clipped) so bandwidth stays bytes / copy time.
    """
    stats: list[TransferStat] = []
    m = trace.memcpy
    m = m[(m["device"].to_numpy() == device) & _starts_inside(m, win)]
    if not m.empty:
        dur = (m["end"] - m["start"]).to_numpy(np.int64)
        pageable = (
            (m["src_kind"].astype(str) == PAGEABLE) | (m["dst_kind"].astype(str) == PAGEABLE)
        ).to_numpy()
        frame = pd.DataFrame(
            {
                "kind": m["kind"].astype(str).to_numpy(),
                "dur": dur,
                "bytes": m["bytes"].to_numpy(),
                "pg": pageable,
            }
        )
        for kind, grp in frame.groupby("kind", sort=True):
            stats.append(
                _transfer_stat(
                    str(kind), grp["dur"].to_numpy(), grp["bytes"].to_numpy(), int(grp["pg"].sum())
                )
            )
    s = trace.memset
    s = s[(s["device"].to_numpy() == device) & _starts_inside(s, win)]
    if not s.empty:
        stats.append(
            _transfer_stat("memset", (s["end"] - s["start"]).to_numpy(np.int64), s["bytes"].to_numpy(), 0)
        )
    return stats


def _starts_inside(frame: pd.DataFrame, win: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    starts = frame["start"].to_numpy(np.int64)
    return intervals.overlaps_any(starts, starts, win)


def _transfer_stat(direction: str, durations: np.ndarray, nbytes: np.ndarray, pageable: int) -> TransferStat:
    total = int(durations.sum())
    size = int(nbytes.sum())
    return TransferStat(
        direction=direction,
        count=len(durations),
        total_ns=total,
        bytes=size,
        bandwidth_gb_per_s=size / total if total > 0 else None,  # bytes/ns == GB/s
        pageable_count=pageable,
    )


def total_timeline(devices: list[DeviceTimeline]) -> DeviceTimeline:
    """The aggregate over devices: sums of wall/busy/idle, idle_ratio = Σ idle / Σ wall.

    Each device contributes its own window, so the ratio is the device-time-weighted idle
    fraction (what an operator paying for GPU-seconds sees), not the idle of a merged timeline
    (devices of different traces do not share a clock). The window lists every device window.
    """
    wall = sum(d.wall_ns for d in devices)
    busy = sum(d.busy_ns for d in devices)
    idle = sum(d.idle_ns for d in devices)
    idle_ratio = idle / wall if wall > 0 else 0.0
    launch_known = [d for d in devices if d.launch_api_ns is not None]
    reasons = sorted({d.launch_overhead_na_reason for d in devices if d.launch_overhead_na_reason})
    launch_ns = sum(d.launch_api_ns or 0 for d in launch_known) if len(launch_known) == len(devices) else None
    return DeviceTimeline(
        trace=", ".join(sorted({d.trace for d in devices})),
        device=None,
        window=Window(
            intervals_ns=[iv for d in devices for iv in d.window.intervals_ns],
            duration_ns=wall,
            source="sum over devices",
        ),
        wall_ns=wall,
        busy_ns=busy,
        idle_ns=idle,
        idle_ratio=idle_ratio,
        utilization=1.0 - idle_ratio,
        kernel_count=sum(d.kernel_count for d in devices),
        kernel_time_ns=sum(d.kernel_time_ns for d in devices),
        launch_api_count=sum(d.launch_api_count or 0 for d in launch_known)
        if launch_ns is not None
        else None,
        launch_api_ns=launch_ns,
        launch_overhead_ratio=launch_ns / wall if launch_ns is not None and wall > 0 else None,
        launch_overhead_na_reason="; ".join(reasons) if launch_ns is None else None,
        transfers=_merge_transfers([t for d in devices for t in d.transfers]),
        gap_buckets=_merge_buckets([d.gap_buckets for d in devices]),
        eager_gap_buckets=(
            _merge_buckets([d.eager_gap_buckets for d in devices if d.eager_gap_buckets is not None])
            if devices and all(d.eager_gap_buckets is not None for d in devices)
            else None
        ),
        **_total_coverage(devices).model_dump(),
    )


def _total_coverage(devices: list[DeviceTimeline]) -> GraphCoverage:
    """Coverage over all devices; not applicable when any device's is not.

    The total's top eager kernels merge the devices' own top lists (what the devices keep), so
    a kernel just outside every device's top 5 may be missing from it.
    """
    reasons = sorted({d.graph_coverage_na_reason for d in devices if d.graph_coverage_na_reason})
    if not devices or reasons:
        return GraphCoverage(graph_coverage_na_reason="; ".join(reasons) or "no devices")
    graph = sum(d.graph_kernel_count or 0 for d in devices)
    count = sum(d.kernel_count for d in devices)
    eager = pd.DataFrame(
        [
            {"name": e.name, "kernels": e.count, "total_ns": e.total_ns}
            for d in devices
            for e in d.top_eager_kernels
        ],
        columns=["name", "kernels", "total_ns"],
    )
    return GraphCoverage(
        graph_kernel_count=graph,
        graph_kernel_time_ns=sum(d.graph_kernel_time_ns or 0 for d in devices),
        graph_coverage=graph / count if count else None,
        graph_launch_count=sum(d.graph_launch_count or 0 for d in devices),
        top_eager_kernels=top_eager_kernels(eager),
    )


def _merge_transfers(stats: list[TransferStat]) -> list[TransferStat]:
    merged: dict[str, TransferStat] = {}
    for t in stats:
        if t.direction not in merged:
            merged[t.direction] = t.model_copy()
            continue
        m = merged[t.direction]
        m.count += t.count
        m.total_ns += t.total_ns
        m.bytes += t.bytes
        m.pageable_count += t.pageable_count
        m.bandwidth_gb_per_s = m.bytes / m.total_ns if m.total_ns > 0 else None
    return sorted(merged.values(), key=lambda t: t.direction)


def _merge_buckets(per_device: list[list[GapBucket]]) -> list[GapBucket]:
    if not per_device:
        return gap_buckets(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    merged = [b.model_copy() for b in per_device[0]]
    for buckets in per_device[1:]:
        for m, b in zip(merged, buckets, strict=True):
            m.count += b.count
            m.total_ns += b.total_ns
    return merged
