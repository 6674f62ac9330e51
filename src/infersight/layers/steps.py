"""Engine step annotations as evidence for the pass structure (methodology §5).

Serving engines mark every scheduler step with a named range (vLLM ``execute_…context_…
generation_…``, SGLang ``step[DECODE …]``, TensorRT-LLM ``_forward_step``; the patterns are the
step markers of ``data/phase_markers.toml``). A step runs one forward pass of the model — or
several (speculative decoding runs draft passes too; HF ``generate`` under one ``ProfilerStep``
runs every token's pass, which is why ``ProfilerStep#N`` is no step marker here). So step ranges
confirm a pass structure found from the kernels, and decide it only where the kernels show no
boundary: see :func:`infersight.layers.passes.infer_passes`.

An anchor belongs to a host range when its launching API call starts inside the range (same
process and thread, so CUDA-graph kernels follow their graph launch); to a GPU annotation range of
its device when it starts inside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersight.analyses.launches import kernel_launch_info
from infersight.analyses.phases import classify_range_name
from infersight.analyses.ranges import GPU_SOURCE, SUMMARY_SOURCES
from infersight.layers.kernels import DeviceKernels, IntArray


def step_event_groups(kernels: DeviceKernels, structural: IntArray, events: IntArray) -> list[IntArray]:
    """Anchor-event indices of every step range that holds anchors, in time order.

    Ranges that hold the same anchors (a host range and its GPU mirror, nested step ranges) count
    once; a range whose anchors are not consecutive events is ignored (it is no step of this stream).
    """
    ranges = _step_ranges(kernels)
    if ranges.empty or len(events) == 0:
        return []
    anchor_rows = kernels.row[structural[events]]
    groups: dict[tuple[int, ...], IntArray] = {}
    for members in _members(kernels, ranges, anchor_rows, kernels.start[structural[events]]):
        if len(members) and members[-1] - members[0] + 1 == len(members):
            groups.setdefault(tuple(members.tolist()), members)
    return sorted(_outermost(list(groups.values())), key=lambda g: int(g[0]))


def _members(
    kernels: DeviceKernels, ranges: pd.DataFrame, anchor_rows: IntArray, anchor_starts: IntArray
) -> list[IntArray]:
    """Anchor-event indices inside every range: GPU annotations by the anchor's start, host ranges
    by its launching call (same process and thread)."""
    on_gpu = ranges["source"].astype(str).to_numpy() == GPU_SOURCE
    gpu = ranges[on_gpu]
    found = _inside(np.arange(len(anchor_rows)), anchor_starts, gpu["start"], gpu["end"])
    host = ranges[~on_gpu]
    if host.empty:
        return found
    launch = kernel_launch_info(kernels.trace)
    launch_start = launch["launch_start"].to_numpy(np.int64)[anchor_rows]
    launch_thread = launch["launch_thread"].to_numpy(np.int64)[anchor_rows]
    process = kernels.trace.kernels["process"].to_numpy(np.int64)[anchor_rows]
    for (range_process, range_thread), group in host.groupby(["process", "thread"], sort=False):
        mine = np.flatnonzero(
            (process == range_process) & (launch_thread == range_thread) & (launch_start >= 0)
        )
        found.extend(_inside(mine, launch_start[mine], group["start"], group["end"]))
    return found


def _inside(indices: IntArray, times: IntArray, starts: pd.Series, ends: pd.Series) -> list[IntArray]:
    """``indices`` whose ``times`` fall in [start, end) of every range (binary search, not a scan)."""
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    low = np.searchsorted(ordered, starts.to_numpy(np.int64), side="left")
    high = np.searchsorted(ordered, ends.to_numpy(np.int64), side="left")
    return [np.sort(indices[order[a:b]]).astype(np.int64) for a, b in zip(low, high, strict=True)]


def _step_ranges(kernels: DeviceKernels) -> pd.DataFrame:
    """Host ranges and this device's GPU annotations whose name is a step marker."""
    ranges = kernels.trace.ranges
    ranges = ranges[ranges["source"].isin(SUMMARY_SOURCES).to_numpy()]
    is_gpu = ranges["source"].astype(str).to_numpy() == GPU_SOURCE
    on_device = ~is_gpu | (ranges["device"].to_numpy() == kernels.device)
    ranges = ranges[on_device]
    if ranges.empty:
        return ranges
    names = pd.Categorical(ranges["name"].astype(str))
    by_name = np.array([classify_range_name(str(name)) is not None for name in names.categories], dtype=bool)
    marked = by_name[names.codes] if len(by_name) else np.zeros(len(ranges), dtype=bool)
    return ranges[marked]


def _outermost(groups: list[IntArray]) -> list[IntArray]:
    """Drop groups that lie inside a larger group (a nested step range, e.g. a model call in a step)."""
    kept: list[IntArray] = []
    for group in sorted(groups, key=len, reverse=True):
        if not any(group[0] >= other[0] and group[-1] <= other[-1] for other in kept):
            kept.append(group)
    return kept
