"""The analysis window (methodology §3): where on a device's timeline the metrics are measured.

By default a device's window is its first kernel start to its last kernel end: time before
the first kernel is profiler start-up, not the workload. ``--window-nvtx REGEX`` instead keeps
the union of the NVTX / annotation ranges whose name matches, e.g. a steady-state step range,
clipped to the device's kernel span so warm-up outside the GPU activity never counts as idle.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.results import Window
from infersight.errors import InputError
from infersight.model import Trace

WINDOW_RANGE_SOURCES = ("nvtx", "user_annotation", "gpu_user_annotation")


def kernel_span(trace: Trace, device: int) -> tuple[int, int] | None:
    """First kernel start and last kernel end on the device (None without kernels)."""
    k = trace.kernels
    on_device = k[k["device"].to_numpy() == device]
    if on_device.empty:
        return None
    return int(on_device["start"].min()), int(on_device["end"].max())


def analysis_window(trace: Trace, device: int, window_nvtx: str | None = None) -> Window:
    """The window of one device: its kernel span, or matching ranges clipped to that span."""
    span = kernel_span(trace, device)
    if span is None:
        return Window(intervals_ns=[], duration_ns=0, source="kernels")
    if window_nvtx is None:
        return Window(intervals_ns=[span], duration_ns=span[1] - span[0], source="kernels")
    starts, ends = matching_ranges(trace, window_nvtx, device)
    ws, we = intervals.clip(starts, ends, (np.array([span[0]]), np.array([span[1]])))
    pairs = [(int(s), int(e)) for s, e in zip(ws, we, strict=True)]
    return Window(intervals_ns=pairs, duration_ns=int((we - ws).sum()), source=f"nvtx:{window_nvtx}")


def matching_ranges(
    trace: Trace, window_nvtx: str, device: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Start/end of every NVTX/annotation range whose name matches the regex (re.search).

    With ``device``, and when the trace's kernels come from several host processes (one nsys
    export of several ranks), only the ranges of the processes that launched that device's
    kernels (or GPU ranges on that device) cut its window: rank 0's step ranges say nothing
    about rank 1's GPU. A device whose own processes have no matching range keeps all matches.
    Raises InputError when the regex is invalid or matches nothing, listing names that exist.
    """
    selected = select_ranges(trace, window_nvtx, "--window-nvtx")
    if selected.empty:
        existing = sorted({str(n) for n in _window_sources(trace)["name"].unique()})[:8]
        listed = ", ".join(repr(n) for n in existing) if existing else "none"
        raise InputError(
            trace.source,
            f"--window-nvtx {window_nvtx!r} matches no NVTX/annotation range; ranges present: {listed}",
        )
    if device is not None:
        selected = _own_ranges(trace, selected, device)
    return selected["start"].to_numpy(np.int64), selected["end"].to_numpy(np.int64)


def select_ranges(trace: Trace, regex: str, option: str) -> pd.DataFrame:
    """The NVTX / annotation ranges whose name matches ``regex`` (re.search), possibly none.

    The regex is matched once per distinct name, not per range. Raises InputError naming the
    command-line ``option`` when the regex is invalid.
    """
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise InputError(trace.source, f"{option} {regex!r} is not a valid regex: {exc}") from None
    r = _window_sources(trace)
    names = r["name"].astype("category")
    matching_names = [n for n in names.cat.categories if pattern.search(str(n))]
    return r[names.isin(matching_names).to_numpy()]


def _window_sources(trace: Trace) -> pd.DataFrame:
    """The ranges that can delimit a window: NVTX, user and GPU user annotations."""
    r = trace.ranges
    return r[r["source"].isin(WINDOW_RANGE_SOURCES).to_numpy()]


def _own_ranges(trace: Trace, selected: pd.DataFrame, device: int) -> pd.DataFrame:
    """The matching ranges issued by the processes that launched ``device``'s kernels."""
    kernel_process = trace.kernels["process"].to_numpy()
    if len(np.unique(kernel_process)) < 2:  # one process (or a Kineto file): every range is its own
        return selected
    launching = np.unique(kernel_process[trace.kernels["device"].to_numpy() == device])
    range_device = selected["device"].to_numpy()
    own = (range_device == device) | ((range_device < 0) & np.isin(selected["process"].to_numpy(), launching))
    return selected[own] if own.any() else selected


def window_arrays(window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The window as (starts, ends) int64 arrays for the interval functions."""
    if not window.intervals_ns:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy()
    arr = np.asarray(window.intervals_ns, dtype=np.int64)
    return arr[:, 0].copy(), arr[:, 1].copy()


def analysis_windows(trace: Trace, window_nvtx: str | None = None) -> dict[int, Window]:
    """The window of every device that ran kernels in the trace, by device index."""
    devices = sorted(int(d) for d in np.unique(trace.kernels["device"].to_numpy()))
    if window_nvtx is not None:
        matching_ranges(trace, window_nvtx)  # fail once, clearly, before per-device work
    return {d: analysis_window(trace, d, window_nvtx) for d in devices}
