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
    starts = kernels.start[structural[events]]
    launch = kernel_launch_info(kernels.trace)
    launch_start = launch["launch_start"].to_numpy(np.int64)[anchor_rows]
    launch_thread = launch["launch_thread"].to_numpy(np.int64)[anchor_rows]
    process = kernels.trace.kernels["process"].to_numpy(np.int64)[anchor_rows]
    groups: dict[tuple[int, ...], IntArray] = {}
    columns = zip(
        ranges["source"].astype(str).to_numpy() == GPU_SOURCE,
        ranges["process"].to_numpy(np.int64),
        ranges["thread"].to_numpy(np.int64),
        ranges["start"].to_numpy(np.int64),
        ranges["end"].to_numpy(np.int64),
        strict=True,
    )
    for on_gpu, range_process, range_thread, range_start, range_end in columns:
        if on_gpu:
            inside = (starts >= range_start) & (starts < range_end)
        else:
            inside = (
                (process == range_process)
                & (launch_thread == range_thread)
                & (launch_start >= range_start)
                & (launch_start < range_end)
            )
        members = np.flatnonzero(inside).astype(np.int64)
        if len(members) and members[-1] - members[0] + 1 == len(members):
            groups.setdefault(tuple(members.tolist()), members)
    return sorted(_outermost(list(groups.values())), key=lambda g: int(g[0]))


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
