"""Data the HTML report plots beyond the JSON report: per-device busy timelines and kernel/idle-gap
tracks for the zoomable timeline (:func:`device_tracks`, decimated to a bounded size).
:mod:`infersight.api.html_data` adds the per-layer times; ``render/html.py`` draws them.

The JSON report holds aggregates only; the busy/idle picture needs the kernel intervals, so it
is computed here from the loaded traces (vectorised: the union of kernel intervals, then the
busy time per bin from one ``covered_before`` call over the bin edges).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from infersight.analyses import intervals
from infersight.analyses.window import analysis_windows
from infersight.model import Trace

__all__ = ["DeviceBusyBins", "DeviceTrack", "busy_timeline", "device_tracks"]

DEFAULT_BINS = 240
MAX_BARS = 12_000  # kernel rectangles over all devices in the timeline chart (file size)
MAX_GAPS = 2_000  # idle-gap rectangles over all devices


class DeviceBusyBins(BaseModel):
    """Busy fraction of one device in equal time bins across its analysis window."""

    label: str
    start_ns: int
    bin_ns: float
    busy_fraction: list[float] = Field(description="busy time / bin length, per bin, in [0, 1]")
    busy_ratio: float = Field(description="busy time / window span (cross-check with the profile)")


class DeviceTrack(BaseModel):
    """Kernels (or, decimated, bins) and idle gaps of one device for the zoomable timeline.

    Times are integer µs from ``origin_ns`` (the first activity of the trace), flattened as
    ``[start, length, category index, ...]`` for bars and ``[start, length, ...]`` for gaps.
    """

    label: str
    trace: str = Field(default="", description="source of the trace (matches DeviceAttribution.trace)")
    device: int | None = None
    origin_ns: int
    window_us: tuple[int, int]
    bin_us: float | None = Field(
        default=None, description="None: one bar per merged kernel run; else the decimation bin"
    )
    bars: list[int] = Field(default_factory=list)
    gaps: list[int] = Field(default_factory=list)
    gap_threshold_us: float = 0.0


def busy_timeline(
    traces: Sequence[Trace], *, window_nvtx: str | None = None, bins: int = DEFAULT_BINS
) -> list[DeviceBusyBins]:
    """Busy fraction per bin for every (trace, device) over the device's analysis window."""
    out: list[DeviceBusyBins] = []
    for trace in traces:
        if trace.kernels.empty:
            continue
        for device, window in analysis_windows(trace, window_nvtx).items():
            if not window.intervals_ns:
                continue
            mask = trace.kernels["device"].to_numpy() == device
            starts = trace.kernels["start"].to_numpy(np.int64)[mask]
            ends = trace.kernels["end"].to_numpy(np.int64)[mask]
            win = (
                np.array([s for s, _ in window.intervals_ns], dtype=np.int64),
                np.array([e for _, e in window.intervals_ns], dtype=np.int64),
            )
            busy_s, busy_e = intervals.clip(starts, ends, win)
            lo, hi = int(win[0].min()), int(win[1].max())
            if hi <= lo:
                continue
            edges = np.linspace(lo, hi, bins + 1).round().astype(np.int64)
            covered = intervals.covered_before(busy_s, busy_e, edges)
            per_bin = np.diff(covered) / np.maximum(np.diff(edges), 1)
            label = f"{trace.label()} dev {device}" if len(traces) > 1 else f"device {device}"
            out.append(
                DeviceBusyBins(
                    label=label,
                    start_ns=lo,
                    bin_ns=(hi - lo) / bins,
                    busy_fraction=[round(float(v), 4) for v in np.clip(per_bin, 0.0, 1.0)],
                    busy_ratio=float(covered[-1] - covered[0]) / (hi - lo),
                )
            )
    return out


def _runs(starts: np.ndarray, ends: np.ndarray, cats: np.ndarray, tol: float) -> np.ndarray:
    """Merge consecutive kernels (sorted by start) of the same category closer than ``tol``.

    Returns rows ``[start, end, category]``; ``end`` is the running maximum (overlaps merge).
    """
    run_end = np.maximum.accumulate(ends)
    new = np.ones(len(starts), dtype=bool)
    new[1:] = (cats[1:] != cats[:-1]) | (starts[1:] - run_end[:-1] > tol)
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(starts) - 1]
    return np.stack([starts[first], run_end[last], cats[first]], axis=1)


def _bins(starts: np.ndarray, ends: np.ndarray, cats: np.ndarray, lo: int, hi: int, n: int) -> np.ndarray:
    """Decimate: ``n`` equal bins, each a bar over its busy extent, coloured by its dominant category."""
    width = max(hi - lo, 1) / n
    index = np.clip(((starts - lo) / width).astype(np.int64), 0, n - 1)
    ncat = int(cats.max()) + 1 if len(cats) else 1
    weight = np.bincount(index * ncat + cats, weights=(ends - starts).astype(float), minlength=n * ncat)
    per_bin = weight.reshape(n, ncat)
    busy = per_bin.sum(axis=1) > 0
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, index, starts)
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, index, ends)
    rows = np.stack([first, last, per_bin.argmax(axis=1)], axis=1)[busy]
    if not len(rows):
        return rows
    return _runs(rows[:, 0], rows[:, 1], rows[:, 2], tol=width)


def device_tracks(
    traces: Sequence[Trace],
    *,
    window_nvtx: str | None = None,
    max_bars: int = MAX_BARS,
    max_gaps: int = MAX_GAPS,
) -> list[DeviceTrack]:
    """Per (trace, device): kernel bars by category and the largest idle gaps, relative to the trace start.

    Exact (one bar per run of same-category kernels with no gap between them) while the device
    has few enough runs; otherwise decimated into equal bins coloured by their dominant category.
    """
    from infersight.analyses.categories import categorize

    rows: list[tuple[Trace, int, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]] = []
    for trace in traces:
        kernels = trace.kernels
        if kernels.empty:
            continue
        codes = np.asarray(categorize(kernels["name"]).codes, dtype=np.int64)
        for device, window in analysis_windows(trace, window_nvtx).items():
            if not window.intervals_ns:
                continue
            mask = kernels["device"].to_numpy() == device
            starts = kernels["start"].to_numpy(np.int64)[mask]
            ends = kernels["end"].to_numpy(np.int64)[mask]
            order = np.argsort(starts, kind="stable")
            lo = min(s for s, _ in window.intervals_ns)
            hi = max(e for _, e in window.intervals_ns)
            rows.append((trace, device, starts[order], ends[order], codes[mask][order], (lo, hi)))
    if not rows:
        return []
    per_device_bars = max(max_bars // len(rows), 200)
    per_device_gaps = max(max_gaps // len(rows), 50)
    origins: dict[int, int] = {}
    for trace, _device, starts, _ends, _cats, (lo, _hi) in rows:
        origins[id(trace)] = min(origins.get(id(trace), lo), lo, int(starts[0]) if len(starts) else lo)
    out: list[DeviceTrack] = []
    for trace, device, starts, ends, cats, (lo, hi) in rows:
        origin = origins[id(trace)]
        bin_us: float | None = None
        if len(starts):
            bars = _runs(starts, ends, cats, tol=0)
            if len(bars) > per_device_bars:
                bars = _bins(starts, ends, cats, lo, hi, per_device_bars)
                bin_us = (hi - lo) / per_device_bars / 1e3
            union_end = np.maximum.accumulate(ends)
            gap_start, gap_len = union_end[:-1], starts[1:] - union_end[:-1]
            keep = gap_len > 0
            gap_start, gap_len = gap_start[keep], gap_len[keep]
            threshold = 0.0
            if len(gap_len) > per_device_gaps:
                threshold = float(np.partition(gap_len, -per_device_gaps)[-per_device_gaps])
                keep = gap_len >= threshold
                gap_start, gap_len = gap_start[keep][:per_device_gaps], gap_len[keep][:per_device_gaps]
        else:
            bars = np.zeros((0, 3), dtype=np.int64)
            gap_start = gap_len = np.zeros(0, dtype=np.int64)
            threshold = 0.0

        def us(values: np.ndarray, origin: int = origin) -> np.ndarray:
            return np.round((values - origin) / 1e3).astype(np.int64)

        flat_bars = np.stack(
            [
                us(bars[:, 0]),
                np.maximum(np.round((bars[:, 1] - bars[:, 0]) / 1e3), 0).astype(np.int64),
                bars[:, 2],
            ],
            axis=1,
        ).ravel()
        flat_gaps = np.stack([us(gap_start), np.round(gap_len / 1e3).astype(np.int64)], axis=1).ravel()
        label = f"{trace.label()} dev {device}" if len(traces) > 1 else f"device {device}"
        out.append(
            DeviceTrack(
                label=label,
                trace=trace.source,
                device=int(device),
                origin_ns=origin,
                window_us=(round((lo - origin) / 1e3), round((hi - origin) / 1e3)),
                bin_us=bin_us,
                bars=[int(v) for v in flat_bars],
                gaps=[int(v) for v in flat_gaps],
                gap_threshold_us=threshold / 1e3,
            )
        )
    return out
