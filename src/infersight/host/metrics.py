"""The interval totals behind M1-M5 (methodology §4) for one device window, and the metrics from them.

Everything is interval arithmetic on the device's window (one or more [start, end) intervals):

* busy = union of kernel intervals clipped to the window; idle = window − busy (M1 = idle / wall,
  M4 = 1 − M1);
* launch time = launch calls charged to the device, clipped to the window (from
  :func:`infersight.analyses.timeline.device_timeline`, M2 = launch / wall);
* NCCL busy = union of collective kernels (category NCCL) clipped to the window
  (M5 = NCCL busy / busy);
* host prep = union of the host-prep ranges of the processes that launched the device's kernels,
  clipped to the window; exposed = host prep ∩ idle (M3a = exposed / host prep,
  M3b = exposed / wall, M3c = exposed / idle).

Totals over devices are plain sums, so ratios over several devices are device-time weighted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.categories import categorize
from infersight.analyses.results import Window
from infersight.analyses.timeline import device_timeline
from infersight.host.attribution import DeviceCopies, collective_labels, device_copies, gap_fill
from infersight.host.config import HostConfig
from infersight.host.results import GapFill, MetricValue, ScopeTimes
from infersight.model import Trace

HOST_PREP_SOURCES = ("nvtx", "user_annotation", "cpu_op")
IntervalSet = tuple[np.ndarray, np.ndarray]


def window_complement(window: IntervalSet, busy: IntervalSet) -> IntervalSet:
    """Idle intervals: the window minus busy (busy disjoint, sorted and inside the window)."""
    starts = np.sort(np.concatenate([window[0], busy[1]]))
    ends = np.sort(np.concatenate([busy[0], window[1]]))
    keep = ends > starts
    return starts[keep], ends[keep]


def nccl_mask(names: pd.Series) -> np.ndarray:
    """Per kernel: is it a collective (category NCCL in data/kernel_categories.toml)?"""
    cat = names.astype("category")
    distinct = pd.Categorical(cat.cat.categories.astype(str))
    is_nccl = np.asarray(categorize(distinct), dtype=object) == "NCCL"
    codes = cat.cat.codes.to_numpy()
    return np.where(codes >= 0, is_nccl[np.maximum(codes, 0)], False)


def host_prep_ranges(trace: Trace, pattern: re.Pattern[str]) -> pd.DataFrame:
    """Host ranges (NVTX, annotations, PyTorch ops) whose name matches the host-prep pattern."""
    r = trace.ranges
    r = r[r["source"].isin(HOST_PREP_SOURCES).to_numpy()]
    if r.empty:
        return r
    names = r["name"].astype("category")
    hit = np.array([bool(pattern.search(str(n))) for n in names.cat.categories], dtype=bool)
    codes = names.cat.codes.to_numpy()
    return r[np.where(codes >= 0, hit[np.maximum(codes, 0)], False)]


@dataclass
class DeviceIntervals:
    """A device's kernels as arrays, prepared once for all scopes."""

    trace: Trace
    device: int
    starts: np.ndarray
    ends: np.ndarray
    nccl: np.ndarray
    collective: np.ndarray  # per kernel: AllReduce, SendRecv, ... for collectives, '' otherwise
    copies: DeviceCopies
    prep: IntervalSet | None  # union of host-prep ranges of the device's processes (None: none exist)

    def fill(self, window: IntervalSet, label: str) -> GapFill:
        """What fills this device's window: gpu / communication / copy / host time."""
        kernels = (self.starts, self.ends, self.nccl, self.collective)
        return gap_fill(self.trace, self.device, kernels, self.copies, window, label)


def device_intervals(
    trace: Trace, device: int, prep: pd.DataFrame | None, migration: re.Pattern[str]
) -> DeviceIntervals:
    """Kernel and copy arrays of one device and the union of its processes' host-prep ranges."""
    k = trace.kernels
    on = k["device"].to_numpy() == device
    kd = k[on]
    prep_set: IntervalSet | None = None
    if prep is not None:
        processes = np.unique(kd["process"].to_numpy())
        mine = prep[np.isin(prep["process"].to_numpy(), processes)] if len(processes) else prep
        if mine.empty:
            mine = prep  # processes not recorded on ranges (e.g. one Kineto session): the host is one
        prep_set = intervals.union(mine["start"].to_numpy(np.int64), mine["end"].to_numpy(np.int64))
    is_comm = nccl_mask(kd["name"])
    return DeviceIntervals(
        trace=trace,
        device=device,
        starts=kd["start"].to_numpy(np.int64),
        ends=kd["end"].to_numpy(np.int64),
        nccl=is_comm,
        collective=collective_labels(kd["name"], is_comm),
        copies=device_copies(trace, device, migration),
        prep=prep_set,
    )


def scope_times(dev: DeviceIntervals, window: IntervalSet) -> tuple[ScopeTimes, str | None, IntervalSet]:
    """Totals of one device inside a window, the launch n/a reason, and the idle intervals."""
    wall = int((window[1] - window[0]).sum())
    busy = intervals.clip(dev.starts, dev.ends, window)
    busy_ns = int((busy[1] - busy[0]).sum())
    idle = window_complement(window, busy)
    nccl = intervals.clip(dev.starts[dev.nccl], dev.ends[dev.nccl], window)
    timeline = device_timeline(
        dev.trace,
        dev.device,
        Window(
            intervals_ns=[(int(s), int(e)) for s, e in zip(window[0], window[1], strict=True)],
            duration_ns=wall,
            source="host scope",
        ),
    )
    prep_ns = exposed_ns = None
    if dev.prep is not None:
        prep_in = intervals.intersect(dev.prep[0], dev.prep[1], window[0], window[1])
        prep_ns = int((prep_in[1] - prep_in[0]).sum())
        exposed = intervals.intersect(prep_in[0], prep_in[1], idle[0], idle[1])
        exposed_ns = int((exposed[1] - exposed[0]).sum())
    times = ScopeTimes(
        wall_ns=wall,
        busy_ns=busy_ns,
        idle_ns=wall - busy_ns,
        launch_api_ns=timeline.launch_api_ns,
        nccl_busy_ns=int((nccl[1] - nccl[0]).sum()),
        host_prep_ns=prep_ns,
        host_prep_exposed_ns=exposed_ns,
        devices=1,
    )
    return times, timeline.launch_overhead_na_reason, idle


def add_times(parts: list[ScopeTimes]) -> ScopeTimes:
    """Sum of several devices' totals; optional totals stay None if any part lacks them."""

    def total(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    return ScopeTimes(
        wall_ns=sum(p.wall_ns for p in parts),
        busy_ns=sum(p.busy_ns for p in parts),
        idle_ns=sum(p.idle_ns for p in parts),
        launch_api_ns=total([p.launch_api_ns for p in parts]),
        nccl_busy_ns=sum(p.nccl_busy_ns for p in parts),
        host_prep_ns=total([p.host_prep_ns for p in parts]),
        host_prep_exposed_ns=total([p.host_prep_exposed_ns for p in parts]),
        devices=sum(p.devices for p in parts),
        steps=sum(p.steps for p in parts),
    )


def _ratio(num: int | None, den: int) -> float | None:
    return None if num is None or den <= 0 else num / den


def metric_values(
    times: ScopeTimes,
    config: HostConfig,
    scope: str,
    launch_na: str | None,
    prep_na: str | None,
    fill: GapFill,
) -> list[MetricValue]:
    """M1..M5, then M1h and M2e (appended: the list order is part of the JSON report), judged
    against the scope's thresholds.

    M1h (host-attributable idle) and M2e (exposed launch) are shares of the attribution window
    ``fill`` (the kernel span for the aggregate, the steps for a phase): they are what the
    verdict rests on, since M1 and M2 alone cannot tell a host stall from a copy or a hidden launch.
    """
    idle_ratio = _ratio(times.idle_ns, times.wall_ns)
    exposed = times.host_prep_exposed_ns
    values: dict[str, tuple[float | None, str | None]] = {
        "M1": (idle_ratio, None if idle_ratio is not None else "empty window"),
        "M2": (_ratio(times.launch_api_ns, times.wall_ns), launch_na),
        "M3a": (
            _ratio(exposed, times.host_prep_ns or 0),
            prep_na or ("no host-prep range inside this window" if not times.host_prep_ns else None),
        ),
        "M3b": (_ratio(exposed, times.wall_ns), prep_na),
        "M3c": (
            _ratio(exposed, times.idle_ns),
            prep_na or ("the GPU is never idle in this window" if times.idle_ns <= 0 else None),
        ),
        "M4": (
            None if idle_ratio is None else 1.0 - idle_ratio,
            None if idle_ratio is not None else "empty window",
        ),
        "M5": (
            _ratio(times.nccl_busy_ns, times.busy_ns),
            None if times.busy_ns > 0 else "no kernel time in this window",
        ),
        "M1h": (
            _ratio(fill.host_ns, fill.window_ns),
            None if fill.window_ns > 0 else "empty window",
        ),
        "M2e": (
            _ratio(fill.launch_exposed_ns, fill.window_ns),
            launch_na or ("no kernel launch calls in the trace" if fill.launch_exposed_ns is None else None),
        ),
    }
    out = []
    for metric, (value, reason) in values.items():
        limit = config.threshold(metric, scope)
        out.append(
            MetricValue(
                id=metric,
                name=limit.name,
                value=value,
                threshold=limit.threshold,
                comparison=limit.comparison,
                crossed=None if value is None else limit.crossed(value),
                threshold_source=limit.source,
                na_reason=reason if value is None else None,
            )
        )
    return out
