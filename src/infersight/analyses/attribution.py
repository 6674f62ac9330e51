"""Wall-time attribution (docs/methodology.md §3.2): every instant of a device's activity window is
exactly one of ``gpu``, ``communication``, ``copy`` or ``host``, and the largest is the verdict.

Why: the kernel-window idle ratio says *that* the GPU waits, not *on what*. A run whose idle gaps
are filled by host-to-device copies, or whose kernels are mostly collectives, is not host-bound;
naming the bucket that fills the time is what keeps the headline right.

Buckets are computed by priority on interval unions, so each instant counts once:

* ``gpu``           = |U(compute kernels)|
* ``communication`` = |U(compute ∪ collectives)| − gpu
* ``copy``          = |U(compute ∪ collectives ∪ memcpy ∪ memset)| − gpu − communication
* ``host``          = window − everything above

The activity window runs from the device's first to its last GPU activity of any kind (kernel,
memcpy, memset); with ``--window-nvtx`` it is the analysis window of the matching ranges instead.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.categories import categorize
from infersight.analyses.kernel_names import simplify_names
from infersight.analyses.launches import is_launch_call, trace_launch_calls
from infersight.analyses.phases import NO_PHASE, Labelled, label_trace
from infersight.analyses.range_names import RangeNames
from infersight.analyses.ranges import PER_RANGE_PASS, RANGES_PER_PASS
from infersight.analyses.results import (
    AttributionPart,
    BucketShares,
    CategoryTime,
    CollectiveTime,
    CopyDirectionTime,
    DeviceAttribution,
    HostBreakdown,
    OutsideKernelWindow,
    RangeTime,
    Window,
)
from infersight.analyses.window import analysis_windows, window_arrays
from infersight.hardware.links import copy_link
from infersight.model import Trace
from infersight.model.emit_nvtx import first_rows

BUCKETS: tuple[str, ...] = ("gpu", "communication", "copy", "host")
COMM_CATEGORY = "NCCL"
PAGEABLE = "pageable"
MEMSET = "memset"
HOST_RANGE_SOURCES = ("nvtx", "user_annotation", "cpu_op")
Spans = tuple[np.ndarray, np.ndarray]


@cache
def settings() -> dict[str, Any]:
    """The attribution settings (confidence margins, sync API names) from ``data/attribution.toml``."""
    text = resources.files("infersight").joinpath("data/attribution.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def confidence_of(margin: float) -> Literal["high", "medium", "low"]:
    """high / medium / low from the primary bucket's margin over the second."""
    cfg = settings()["confidence"]
    if margin >= float(cfg["high_margin"]):
        return "high"
    return "medium" if margin >= float(cfg["medium_margin"]) else "low"


def rank_buckets(times: dict[str, int]) -> tuple[str, str, float]:
    """(primary, second, margin) of bucket times; ties go to the earlier bucket in BUCKETS."""
    total = sum(times.values())
    ordered = sorted(BUCKETS, key=lambda b: (-times[b], BUCKETS.index(b)))
    margin = (times[ordered[0]] - times[ordered[1]]) / total if total > 0 else 0.0
    return ordered[0], ordered[1], margin


def shares_of(times: dict[str, int], window_ns: int) -> BucketShares:
    """Bucket times as fractions of the window (all zero for an empty window)."""
    return BucketShares(**{b: (times[b] / window_ns if window_ns > 0 else 0.0) for b in BUCKETS})


# ---------------------------------------------------------------- the device's activity


@dataclass(frozen=True)
class DeviceActivity:
    """One device's GPU work as interval arrays plus the frames the breakdowns need."""

    kernels: pd.DataFrame  # start, end, name, category, simple, comm
    copies: pd.DataFrame  # start, end, bytes, direction, pageable

    # The interval sets are unions, computed once per device: every bucket, breakdown and window
    # (device, phase, step) is interval math over them, and re-sorting a million kernels for each
    # would dominate the cost.
    @cached_property
    def compute(self) -> Spans:
        k = self.kernels[~self.kernels["comm"].to_numpy()]
        return intervals.union(k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64))

    @cached_property
    def comm(self) -> Spans:
        k = self.kernels[self.kernels["comm"].to_numpy()]
        return intervals.union(k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64))

    @cached_property
    def copy(self) -> Spans:
        return intervals.union(self.copies["start"].to_numpy(np.int64), self.copies["end"].to_numpy(np.int64))

    @cached_property
    def kernels_union(self) -> Spans:
        """Compute and collective kernels together."""
        return intervals.union(*_concat(self.compute, self.comm))

    @cached_property
    def everything(self) -> Spans:
        """All GPU activity: kernels, copies, memsets."""
        return intervals.union(*_concat(self.kernels_union, self.copy))

    def span(self) -> tuple[int, int] | None:
        starts = [f["start"].to_numpy(np.int64) for f in (self.kernels, self.copies) if len(f)]
        ends = [f["end"].to_numpy(np.int64) for f in (self.kernels, self.copies) if len(f)]
        if not starts:
            return None
        return int(min(s.min() for s in starts)), int(max(e.max() for e in ends))


def device_activity(trace: Trace, device: int, kernel_labels: pd.DataFrame) -> DeviceActivity:
    """The device's kernels (labelled with category / simplified name) and copies."""
    on = trace.kernels["device"].to_numpy() == device
    k = trace.kernels[on]
    labels = kernel_labels[on]
    kernels = pd.DataFrame(
        {
            "start": k["start"].to_numpy(np.int64),
            "end": k["end"].to_numpy(np.int64),
            "category": labels["category"].to_numpy(),
            "simple": labels["simple"].to_numpy(),
            "comm": labels["comm"].to_numpy(bool),
        }
    )
    return DeviceActivity(kernels, _device_copies(trace, device))


def kernel_labels(trace: Trace) -> pd.DataFrame:
    """Per kernel of the trace: category, simplified name, and whether it is a collective."""
    names = pd.Categorical(trace.kernels["name"])
    distinct = pd.Categorical(names.categories.astype(str))
    category = np.asarray(categorize(distinct), dtype=object)
    simple = np.asarray(simplify_names(distinct), dtype=object)
    codes = np.asarray(names.codes)
    valid = codes >= 0
    safe = np.where(valid, codes, 0)
    cat = np.where(valid, category[safe] if len(category) else "other", "other")
    return pd.DataFrame(
        {
            "category": cat,
            "simple": np.where(valid, simple[safe] if len(simple) else "", ""),
            "comm": cat == COMM_CATEGORY,
        }
    )


def _device_copies(trace: Trace, device: int) -> pd.DataFrame:
    """memcpy and memset rows of the device, with a direction (``memset`` for memsets)."""
    m = trace.memcpy[trace.memcpy["device"].to_numpy() == device]
    s = trace.memset[trace.memset["device"].to_numpy() == device]
    pageable = (m["src_kind"].astype(str) == PAGEABLE) | (m["dst_kind"].astype(str) == PAGEABLE)
    return pd.DataFrame(
        {
            "start": np.concatenate([m["start"].to_numpy(np.int64), s["start"].to_numpy(np.int64)]),
            "end": np.concatenate([m["end"].to_numpy(np.int64), s["end"].to_numpy(np.int64)]),
            "bytes": np.concatenate([m["bytes"].to_numpy(np.int64), s["bytes"].to_numpy(np.int64)]),
            "direction": np.concatenate(
                [m["kind"].astype(str).to_numpy(object), np.full(len(s), MEMSET, dtype=object)]
            ),
            "pageable": np.concatenate([pageable.to_numpy(bool), np.zeros(len(s), dtype=bool)]),
        }
    )


# ---------------------------------------------------------------- buckets


def bucket_times(activity: DeviceActivity, window: Spans) -> dict[str, int]:
    """ns of each bucket inside the window (a disjoint sorted interval set)."""
    window_ns = int((window[1] - window[0]).sum())
    gpu = _length_in(activity.compute, window)
    with_comm = _length_in(activity.kernels_union, window)
    everything = _length_in(activity.everything, window)
    return {
        "gpu": gpu,
        "communication": with_comm - gpu,
        "copy": everything - with_comm,
        "host": window_ns - everything,
    }


def bucket_intervals(activity: DeviceActivity, window: Spans) -> dict[str, Spans]:
    """Each bucket's disjoint, sorted interval set inside the window (same priority as bucket_times).

    Why: a timeline needs *where* each bucket's time lies, not only its length; the lengths of
    these sets are exactly :func:`bucket_times` (each instant in one bucket), so a picture drawn
    from them never disagrees with the table.
    """
    gpu = intervals.clip(*activity.compute, window)
    with_comm = intervals.clip(*activity.kernels_union, window)
    everything = intervals.clip(*activity.everything, window)
    return {
        "gpu": gpu,
        "communication": intervals.subtract(*with_comm, *gpu),
        "copy": intervals.subtract(*everything, *with_comm),
        "host": intervals.subtract(*intervals.union(*window), *everything),
    }


def trace_bucket_intervals(
    trace: Trace, window_nvtx: str | None = None, *, windows: dict[int, Window] | None = None
) -> dict[int, tuple[Spans, dict[str, Spans]]]:
    """Per device: its attribution window and each bucket's interval set in it.

    The devices and windows are the ones :func:`trace_attribution` uses, so the interval
    lengths sum to each :class:`DeviceAttribution`'s ``times_ns`` exactly.
    """
    if trace.device_kind == "cpu":
        return {}
    if windows is None:
        windows = analysis_windows(trace, window_nvtx) if not trace.kernels.empty else {}
    labels = kernel_labels(trace)
    out: dict[int, tuple[Spans, dict[str, Spans]]] = {}
    for device in _devices(trace):
        activity = device_activity(trace, device, labels)
        window = _attribution_window(activity, windows.get(device), window_nvtx)
        if window is not None:
            out[device] = (window[0], bucket_intervals(activity, window[0]))
    return out


def _devices(trace: Trace) -> list[int]:
    """Every device with a kernel, memcpy or memset, ascending."""
    return sorted(
        {
            int(d)
            for t in (trace.kernels, trace.memcpy, trace.memset)
            for d in np.unique(t["device"].to_numpy())
        }
    )


def _length_in(spans: Spans, window: Spans) -> int:
    s, e = intervals.clip(spans[0], spans[1], window)
    return int((e - s).sum())


def _concat(*parts: Spans) -> Spans:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def attribution_part(
    activity: DeviceActivity, window: Spans, phase: str, step: int | None
) -> AttributionPart:
    """The buckets of one stretch (a phase's or a step's spans)."""
    times = bucket_times(activity, window)
    window_ns = int((window[1] - window[0]).sum())
    primary, _, margin = rank_buckets(times)
    return AttributionPart(
        phase=phase,
        step=step,
        window_ns=window_ns,
        times_ns=BucketShares(**{b: float(times[b]) for b in BUCKETS}),
        shares=shares_of(times, window_ns),
        primary=primary,
        margin=margin,
    )


# ---------------------------------------------------------------- breakdowns


def category_times(activity: DeviceActivity, window: Spans) -> list[CategoryTime]:
    """Non-communication kernel time per category inside the window, largest first."""
    k = activity.kernels[~activity.kernels["comm"].to_numpy()]
    if k.empty:
        return []
    clipped = intervals.overlap_lengths(k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64), window)
    totals = pd.Series(clipped).groupby(k["category"].to_numpy()).sum().sort_values(ascending=False)
    grand = float(totals.sum())
    return [
        CategoryTime(category=str(c), kernel_time_ns=int(t), share=(t / grand if grand > 0 else 0.0))
        for c, t in totals.items()
        if t > 0
    ]


def collective_times(activity: DeviceActivity, window: Spans) -> list[CollectiveTime]:
    """Per collective kernel name: count, time and the time no compute kernel hides."""
    k = activity.kernels[activity.kernels["comm"].to_numpy()]
    if k.empty:
        return []
    compute = activity.compute
    rows = []
    for name, group in k.groupby("simple", sort=False):
        s, e = group["start"].to_numpy(np.int64), group["end"].to_numpy(np.int64)
        clipped, exposed = _clipped_and_exposed(s, e, window, compute)
        if not clipped.sum():
            continue
        rows.append(
            CollectiveTime(
                collective=str(name),
                count=int((clipped > 0).sum()),
                total_ns=int(clipped.sum()),
                exposed_ns=exposed,
            )
        )
    return sorted(rows, key=lambda r: -r.exposed_ns)


def _clipped_and_exposed(
    starts: np.ndarray, ends: np.ndarray, window: Spans, hiding: Spans
) -> tuple[np.ndarray, int]:
    """Per interval its window-clipped length, and the ns of their union inside the window that
    ``hiding`` (the kernels that would cover them) leaves exposed: shared by copies and collectives."""
    clipped = intervals.overlap_lengths(starts, ends, window)
    alone = intervals.subtract(*intervals.clip(starts, ends, window), hiding[0], hiding[1])
    return clipped, _len(alone)


def copy_directions(
    activity: DeviceActivity, window: Spans, trace: Trace, device: int
) -> list[CopyDirectionTime]:
    """Per copy direction: count, bytes, time, exposed time, bandwidth against the link."""
    c = activity.copies
    if c.empty:
        return []
    kernels = activity.kernels_union
    rows = []
    for direction, group in c.groupby("direction", sort=False):
        s, e = group["start"].to_numpy(np.int64), group["end"].to_numpy(np.int64)
        inside = intervals.overlaps_any(s, e, window)
        if not inside.any():
            continue
        clipped, exposed = _clipped_and_exposed(s, e, window, kernels)
        nbytes = int(group["bytes"].to_numpy(np.int64)[inside].sum())
        duration = int((e - s)[inside].sum())
        achieved = nbytes / duration if duration > 0 and nbytes > 0 else None  # bytes/ns = GB/s
        rows.append(
            _direction_row(str(direction), group, inside, clipped, exposed, nbytes, achieved, trace, device)
        )
    return sorted(rows, key=lambda r: -r.exposed_ns)


def _direction_row(
    direction: str,
    group: pd.DataFrame,
    inside: np.ndarray,
    clipped: np.ndarray,
    exposed: int,
    nbytes: int,
    achieved: float | None,
    trace: Trace,
    device: int,
) -> CopyDirectionTime:
    link, reason = (
        (None, "memsets cross no link")
        if direction == MEMSET
        else copy_link(direction, trace.gpus.get(device))
    )
    return CopyDirectionTime(
        direction=direction,
        count=int(inside.sum()),
        bytes=nbytes,
        total_ns=int(clipped.sum()),
        exposed_ns=exposed,
        bandwidth_gb_per_s=achieved,
        pageable_count=int(group["pageable"].to_numpy(bool)[inside].sum()),
        link=link.name if link is not None else None,
        link_gb_per_s=link.gb_per_s if link is not None else None,
        link_ratio=achieved / link.gb_per_s if achieved is not None and link is not None else None,
        link_na_reason=None if link is not None else reason,
    )


def host_breakdown(trace: Trace, device: int, idle: Spans) -> HostBreakdown:
    """Split the host bucket by the API call the host was in, and the ranges open then."""
    cfg = settings()["host"]
    # the ranges first: their pass may wait for the range summary's (PER_RANGE_PASS), the
    # profile's memory peak with millions of NVTX ranges, and should not hold this device's
    # copy of the API rows meanwhile (~45 MB for 1M kernels)
    ranges = _host_ranges(trace, idle, cfg)
    api = _device_api(trace, device)
    if api.empty:
        return HostBreakdown(
            launch_ns=None,
            sync_ns=None,
            other_api_ns=None,
            no_api_ns=None,
            na_reason="no CUDA/HIP API calls recorded for this device's processes",
            ranges=ranges,
        )
    # only the calls that meet host time matter: filter first (one searchsorted), then union few rows
    touching = intervals.overlaps_any(api["start"].to_numpy(np.int64), api["end"].to_numpy(np.int64), idle)
    api = api[touching]
    names = api["name"].astype(str)
    is_sync = names.isin(cfg["sync_api"]).to_numpy()
    is_launch = is_launch_call(api) & ~is_sync
    sync = _covered(api[is_sync], idle)
    launch = intervals.subtract(*_covered(api[is_launch], idle), *sync)
    total_api = _covered(api, idle)
    idle_ns = int((idle[1] - idle[0]).sum())
    api_ns = _len(total_api)
    return HostBreakdown(
        launch_ns=_len(launch),
        sync_ns=_len(sync),
        other_api_ns=api_ns - _len(launch) - _len(sync),
        no_api_ns=idle_ns - api_ns,
        ranges=ranges,
    )


def _len(spans: Spans) -> int:
    return int((spans[1] - spans[0]).sum())


def _covered(rows: pd.DataFrame, idle: Spans) -> Spans:
    """The parts of the idle intervals that the rows' intervals cover."""
    return intervals.intersect(
        rows["start"].to_numpy(np.int64), rows["end"].to_numpy(np.int64), idle[0], idle[1]
    )


def _device_api(trace: Trace, device: int) -> pd.DataFrame:
    """API calls of the processes that launched this device's kernels (all, with one process)."""
    api = trace.api
    # hash-based distinct values (pd.unique): np.unique sorted the 1.9M API rows per device
    processes = pd.unique(trace.kernels["process"].to_numpy())
    if len(pd.unique(api["process"].to_numpy())) < 2 or len(processes) < 2:
        return api
    own = pd.unique(trace.kernels["process"].to_numpy()[trace.kernels["device"].to_numpy() == device])
    return api[np.isin(api["process"].to_numpy(), own)]


def _host_ranges(trace: Trace, idle: Spans, cfg: dict[str, Any]) -> list[RangeTime]:
    """Host-bucket time inside ranges of each name (top N); nested ranges each count it."""
    r = trace.ranges
    if r.empty or idle[0].size == 0:
        return []
    with PER_RANGE_PASS:  # not beside the range projection (see PER_RANGE_PASS)
        # the rows are picked column by column: a frame of all 4.8M NVTX ranges would be copied whole
        host = r["source"].isin(HOST_RANGE_SOURCES).to_numpy() & (r["device"].to_numpy() < 0)
        rows_used = np.flatnonzero(host)
        del host
        inside = _overlap_lengths_of_rows(r, rows_used, idle)
        keep = inside > 0
        if not keep.any():
            return []
        rows_used = rows_used[keep]
        names, sources = RangeNames.of(r, rows_used), r["source"].cat
        pair_rows, source_codes, totals = _totals_by_name(
            names, sources.codes.to_numpy()[rows_used], inside[keep]
        )
    skip = re.compile(str(cfg["skip_range_pattern"]))
    rows: list[RangeTime] = []
    for pair in largest_first(totals):  # stops after the top N
        name = names.label_of_row(int(pair_rows[pair]))
        if skip.search(name):
            continue
        source = str(sources.categories[source_codes[pair]])
        rows.append(RangeTime(name=name, source=source, host_ns=int(totals[pair])))
        if len(rows) == int(cfg["top_ranges"]):
            break
    return rows


def _overlap_lengths_of_rows(ranges: pd.DataFrame, rows: np.ndarray, spans: Spans) -> np.ndarray:
    """How much of each of the ``rows`` of ``ranges`` lies inside ``spans``, 1M rows at a time.

    The per-row temporaries of the interval search (~8 arrays per row) for the 4.8M NVTX ranges
    of 1M kernels were ~250 MB at once, on the thread beside the range summary.
    """
    starts, ends = ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64)
    inside = np.empty(len(rows), dtype=np.int64)
    for low in range(0, len(rows), RANGES_PER_PASS):
        part = rows[low : low + RANGES_PER_PASS]
        inside[low : low + len(part)] = intervals.overlap_lengths(starts[part], ends[part], spans)
    return inside


def largest_first(values: np.ndarray, first: int = 64) -> Iterator[int]:
    """Indices of ``values`` by value descending, ties by index: a stable descending sort, lazily.

    The caller reads the top few: the ``first`` largest (and every value tied with the last of
    them) are sorted first and the rest only if asked for. A full sort of the totals of 4.6M
    emit_nvtx range names cost ~0.5 s per device for the top 10.
    """
    if len(values) <= 4 * first:
        yield from np.argsort(-values, kind="stable").tolist()
        return
    threshold = np.partition(values, len(values) - first)[len(values) - first]
    for part in (np.flatnonzero(values >= threshold), np.flatnonzero(values < threshold)):
        yield from part[np.argsort(-values[part], kind="stable")].tolist()


def _totals_by_name(
    names: RangeNames, source_codes: np.ndarray, ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact int64 sums of ``ns`` per (name, source) pair, pairs in order of first occurrence:
    (the first row of each pair, its source code, its sum).

    That is the order of a pandas ``groupby(sort=False)``, so :func:`largest_first` of the sums
    ranks them as its stable descending sort would; rows with a missing name or source (-1) are
    left out. Done on integer keys (:meth:`RangeNames.keys`): a pandas groupby on the
    categoricals recodes every category and materialises one tuple per pair (~1 s per device
    with millions of emit_nvtx range names), and a sorted ``np.unique`` of the 4.8M per-range
    keys of a PyTorch export cost 2-3x the hash pass.
    """
    source_codes = source_codes.astype(np.int64)
    width = int(source_codes.max()) + 1 if source_codes.size else 1
    name_keys = names.keys(width)
    rows = np.flatnonzero((name_keys >= 0) & (source_codes >= 0))
    # factorize numbers the pairs in order of first occurrence (a hash pass, no sort of the rows)
    pair, keys = pd.factorize(name_keys[rows] * width + source_codes[rows])
    sums = np.zeros(len(keys), dtype=np.int64)
    np.add.at(sums, pair, ns[rows].astype(np.int64))
    keys = np.asarray(keys, dtype=np.int64)
    return rows[first_rows(pair)], keys % width, sums


def outside_kernel_window(trace: Trace, device: int, activity: DeviceActivity) -> OutsideKernelWindow:
    """Copies and launches the kernel window leaves out, and the kernel-window idle ratio."""
    k = activity.kernels
    if k.empty:
        c = activity.copies
        s, e = intervals.union(c["start"].to_numpy(np.int64), c["end"].to_numpy(np.int64))
        return OutsideKernelWindow(
            kernel_window_ns=0,
            kernel_window_idle_ratio=None,
            copies=len(c),
            copy_ns=_len((s, e)),
            launch_calls=0,
        )
    k0, k1 = int(k["start"].min()), int(k["end"].max())
    busy = intervals.total_length(k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64))
    c = activity.copies
    cs, ce = c["start"].to_numpy(np.int64), c["end"].to_numpy(np.int64)
    outside = (ce <= k0) | (cs >= k1)
    before = intervals.clip(cs, ce, (np.array([np.iinfo(np.int64).min]), np.array([k0])))
    after = intervals.clip(cs, ce, (np.array([k1]), np.array([np.iinfo(np.int64).max])))
    calls = trace_launch_calls(trace)  # joined to the kernels once per trace (the timelines ask too)
    cstart = calls.start[calls.device == device]  # the calls that launched this device's work
    return OutsideKernelWindow(
        kernel_window_ns=k1 - k0,
        kernel_window_idle_ratio=1.0 - busy / (k1 - k0) if k1 > k0 else None,
        copies=int(outside.sum()),
        copy_ns=_len(before) + _len(after),
        launch_calls=int(((cstart < k0) | (cstart >= k1)).sum()),
    )


# ---------------------------------------------------------------- per device


def trace_attribution(
    trace: Trace,
    window_nvtx: str | None = None,
    *,
    windows: dict[int, Window] | None = None,
    labelled: Labelled | None = None,
) -> list[DeviceAttribution]:
    """The attribution of every device of the trace that ran any GPU activity.

    ``windows`` / ``labelled``: the trace's analysis windows and phase labels when the caller
    already computed them (labelling a million kernels twice costs a second).
    """
    if trace.device_kind == "cpu":
        return []
    devices = _devices(trace)
    if not devices:
        return []
    if windows is None:
        windows = analysis_windows(trace, window_nvtx) if not trace.kernels.empty else {}
    if labelled is None and windows:
        labelled = label_trace(trace, windows)
    labelled_kernels = labelled.kernels if labelled is not None else pd.DataFrame()
    labels = kernel_labels(trace)
    out = []
    for device in devices:
        activity = device_activity(trace, device, labels)
        window = _attribution_window(activity, windows.get(device), window_nvtx)
        if window is None:
            continue
        out.append(_device_attribution(trace, device, activity, window, labelled_kernels))
    return out


def _attribution_window(
    activity: DeviceActivity, analysis_window: Window | None, window_nvtx: str | None
) -> tuple[Spans, str] | None:
    if window_nvtx is not None:
        if analysis_window is None or not analysis_window.intervals_ns:
            return None
        return window_arrays(analysis_window), analysis_window.source
    span = activity.span()
    if span is None or span[1] <= span[0]:
        return None
    return (np.array([span[0]], dtype=np.int64), np.array([span[1]], dtype=np.int64)), "activity"


def _device_attribution(
    trace: Trace, device: int, activity: DeviceActivity, window: tuple[Spans, str], labelled: pd.DataFrame
) -> DeviceAttribution:
    spans, source = window
    times = bucket_times(activity, spans)
    window_ns = _len(spans)
    primary, second, margin = rank_buckets(times)
    everything = activity.everything
    idle = intervals.subtract(spans[0], spans[1], *everything)
    phases, steps = _phase_parts(activity, labelled, device)
    gpu = trace.gpus.get(device)
    return DeviceAttribution(
        trace=trace.source,
        rank=trace.rank,
        device=device,
        gpu_name=gpu.name if gpu is not None else None,
        window_start_ns=int(spans[0].min()),
        window_end_ns=int(spans[1].max()),
        window_ns=window_ns,
        window_source=source,
        times_ns=BucketShares(**{b: float(times[b]) for b in BUCKETS}),
        shares=shares_of(times, window_ns),
        primary=primary,
        second=second,
        margin=margin,
        confidence=confidence_of(margin),
        gpu_categories=category_times(activity, spans),
        copy_directions=copy_directions(activity, spans, trace, device),
        collectives=collective_times(activity, spans),
        host=host_breakdown(trace, device, idle),
        outside_kernel_window=outside_kernel_window(trace, device, activity),
        phases=phases,
        steps=steps,
    )


def _phase_parts(
    activity: DeviceActivity, labelled: pd.DataFrame, device: int
) -> tuple[list[AttributionPart], list[AttributionPart]]:
    """Per phase (union of its step spans) and per step (the step's span) of this device."""
    if labelled.empty or "phase" not in labelled:
        return [], []
    k = labelled[
        (labelled["device"].to_numpy() == device) & (labelled["phase"].astype(str).to_numpy() != NO_PHASE)
    ]
    if k.empty:
        return [], []
    spans = (
        pd.DataFrame(
            {
                "phase": k["phase"].astype(str).to_numpy(),
                "step": k["step"].to_numpy(np.int64),
                "s": k["start"].to_numpy(np.int64),
                "e": k["end"].to_numpy(np.int64),
            }
        )
        .groupby(["phase", "step"], sort=False)
        .agg(s=("s", "min"), e=("e", "max"))
        .reset_index()
        .sort_values("s")
    )
    phases = [
        attribution_part(activity, intervals.union(g["s"].to_numpy(), g["e"].to_numpy()), str(phase), None)
        for phase, g in spans.groupby("phase", sort=False)
    ]
    limit = int(settings()["steps"]["max_steps_per_device"])
    steps_frame = spans[spans["step"].to_numpy() >= 0].head(limit)
    steps = [
        attribution_part(
            activity,
            (np.array([start], dtype=np.int64), np.array([end], dtype=np.int64)),
            str(phase),
            int(step),
        )
        for phase, step, start, end in zip(
            *(steps_frame[c].to_numpy() for c in ("phase", "step", "s", "e")),
            strict=True,
        )
    ]
    return phases, steps
