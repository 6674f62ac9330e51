"""Copy/compute overlap (methodology §3, §8): how much copy time kernels hide, per device and per range.

"Compute" is every kernel of the device except communication (NCCL category): a copy running
while a kernel runs costs no wall time, a copy alone on the GPU does. Copies are memcpy rows
(memsets are not transfers). Per direction the bandwidth is bytes / Σ copy durations of the
whole copies that start in the window (as ``timeline.py`` does); hidden/exposed time uses the
union of the copies clipped to the window, so concurrent copies count once.

Per range (``--per-range REGEX``), each instance of a matching NVTX/annotation range stands for a
span of the GPU timeline: a GPU range is its own span; a host range spans from the first start to
the last end of the kernels and copies launched inside it (launching API call on the same process
and thread, joined on process + correlation id). Inside the span, every copy and compute kernel of
the device counts (clipped), whoever launched it: a prefetch issued one layer earlier, or kernels
of another thread (autograd), do run there. That is what a weight-streaming or KV-offload loop
needs: per layer, the load time, the compute time, how much of the load the compute hides, and
(serial − actual) / serial with actual = the span, negative when the layer takes longer than its
load and compute back to back (a synchronous load, a stall, communication).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.categories import categorize
from infersight.analyses.ranges import grouped_union_length
from infersight.analyses.results import Window
from infersight.analyses.window import matching_ranges, select_ranges, window_arrays
from infersight.errors import InputError
from infersight.hardware.links import copy_link
from infersight.model import Trace
from infersight.model.trace import GpuInfo
from infersight.overlap.results import CopyDirectionStat, CopyOverlap, RangeOverlap

COMM_CATEGORY = "NCCL"
PAGEABLE = "pageable"
GPU_RANGE_SOURCE = "gpu_user_annotation"
NO_COPIES = "no memcpy events in the window (the trace has no copies, or copy tracing was off)"


def comm_kernel_mask(trace: Trace) -> np.ndarray:
    """Per kernel of the trace: is it a communication (NCCL-category) kernel?"""
    if trace.kernels.empty:
        return np.zeros(0, dtype=bool)
    return np.asarray(categorize(trace.kernels["name"]) == COMM_CATEGORY, dtype=bool)


def pageable_mask(copies: pd.DataFrame) -> np.ndarray:
    """Per copy: is one host side pageable (the copy is synchronous in effect)?"""
    return np.asarray(
        (copies["src_kind"].astype(str) == PAGEABLE) | (copies["dst_kind"].astype(str) == PAGEABLE),
        dtype=bool,
    )


def copy_overlaps(trace: Trace, window_nvtx: str | None = None) -> list[CopyOverlap]:
    """Copy/compute overlap of every device of the trace that ran kernels or copies."""
    is_comm = comm_kernel_mask(trace)
    return [
        copy_overlap(trace, device, window, is_comm)
        for device, window in copy_windows(trace, window_nvtx).items()
    ]


def copy_windows(trace: Trace, window_nvtx: str | None = None) -> dict[int, Window]:
    """Per device: first GPU activity (kernel or copy) to the last, or the matching ranges clipped to it.

    Unlike the kernel-span window of methodology §3, copies before the first kernel (weight loads) and
    after the last (result read-back) count here: they are exactly what this analysis is about.
    """
    k, m = trace.kernels, trace.memcpy
    devices = np.concatenate([k["device"].to_numpy(np.int64), m["device"].to_numpy(np.int64)])
    starts = np.concatenate([k["start"].to_numpy(np.int64), m["start"].to_numpy(np.int64)])
    ends = np.concatenate([k["end"].to_numpy(np.int64), m["end"].to_numpy(np.int64)])
    selected = matching_ranges(trace, window_nvtx) if window_nvtx is not None else None
    windows: dict[int, Window] = {}
    for device in sorted(int(d) for d in np.unique(devices)):
        on = devices == device
        span = (np.array([starts[on].min()]), np.array([ends[on].max()]))
        if selected is None:
            windows[device] = Window(
                intervals_ns=[(int(span[0][0]), int(span[1][0]))],
                duration_ns=int(span[1][0] - span[0][0]),
                source="kernels and copies",
            )
            continue
        ws, we = intervals.clip(selected[0], selected[1], span)
        windows[device] = Window(
            intervals_ns=[(int(s), int(e)) for s, e in zip(ws, we, strict=True)],
            duration_ns=int((we - ws).sum()),
            source=f"nvtx:{window_nvtx}",
        )
    return windows


def copy_overlap(trace: Trace, device: int, window: Window, is_comm: np.ndarray) -> CopyOverlap:
    """Copies of one device against its compute kernels, inside the window."""
    win = window_arrays(window)
    k = trace.kernels
    compute = (k["device"].to_numpy() == device) & ~is_comm
    ks, ke = k["start"].to_numpy(np.int64)[compute], k["end"].to_numpy(np.int64)[compute]
    compute_s, compute_e = intervals.clip(ks, ke, win)
    compute_busy = int((compute_e - compute_s).sum())
    m = trace.memcpy
    m = m[m["device"].to_numpy() == device]
    starts = m["start"].to_numpy(np.int64)
    m = m[intervals.overlaps_any(starts, starts, win)]
    gpu = trace.gpus.get(device)
    base: dict[str, Any] = {
        "trace": trace.source,
        "rank": trace.rank,
        "device": device,
        "gpu_name": gpu.name if gpu else None,
        "window": window,
        "wall_ns": window.duration_ns,
        "compute_busy_ns": compute_busy,
    }
    if m.empty:
        return CopyOverlap(
            **base,
            copy_busy_ns=0,
            copy_time_ns=0,
            copy_bytes=0,
            hidden_ns=0,
            exposed_ns=0,
            hidden_ratio=None,
            exposed_ratio=None,
            serial_efficiency=None,
            directions=[],
            na_reason=NO_COPIES,
        )
    cs, ce = m["start"].to_numpy(np.int64), m["end"].to_numpy(np.int64)
    copy_busy, hidden = _busy_and_hidden(cs, ce, win, (compute_s, compute_e))
    exposed = copy_busy - hidden
    serial = copy_busy + compute_busy
    kinds = m["kind"].astype(str).to_numpy()
    pageable = pageable_mask(m)
    directions = [
        _direction_stat(
            str(kind), m[kinds == kind], pageable[kinds == kind], win, (compute_s, compute_e), gpu
        )
        for kind in sorted(set(kinds))
    ]
    wall = window.duration_ns
    return CopyOverlap(
        **base,
        copy_busy_ns=copy_busy,
        copy_time_ns=int((ce - cs).sum()),
        copy_bytes=int(m["bytes"].sum()),
        hidden_ns=hidden,
        exposed_ns=exposed,
        hidden_ratio=hidden / copy_busy if copy_busy > 0 else None,
        exposed_ratio=exposed / wall if wall > 0 else None,
        serial_efficiency=hidden / serial if serial > 0 else None,
        directions=directions,
    )


def _busy_and_hidden(
    starts: np.ndarray,
    ends: np.ndarray,
    win: tuple[np.ndarray, np.ndarray],
    compute: tuple[np.ndarray, np.ndarray],
) -> tuple[int, int]:
    """(union length of the intervals in the window, part of it under compute)."""
    bs, be = intervals.clip(starts, ends, win)
    hs, he = intervals.intersect(bs, be, compute[0], compute[1])
    return int((be - bs).sum()), int((he - hs).sum())


def _direction_stat(
    direction: str,
    copies: pd.DataFrame,
    pageable: np.ndarray,
    win: tuple[np.ndarray, np.ndarray],
    compute: tuple[np.ndarray, np.ndarray],
    gpu: GpuInfo | None,
) -> CopyDirectionStat:
    cs, ce = copies["start"].to_numpy(np.int64), copies["end"].to_numpy(np.int64)
    busy, hidden = _busy_and_hidden(cs, ce, win, compute)
    durations = ce - cs
    time_ns = int(durations.sum())
    nbytes = int(copies["bytes"].sum())
    achieved = nbytes / time_ns if time_ns > 0 and nbytes > 0 else None  # bytes/ns == GB/s
    link, reason = copy_link(direction, gpu)
    return CopyDirectionStat(
        direction=direction,
        count=len(copies),
        bytes=nbytes,
        time_ns=time_ns,
        busy_ns=busy,
        hidden_ns=hidden,
        exposed_ns=busy - hidden,
        pageable_count=int(pageable.sum()),
        pageable_time_ns=int(durations[pageable].sum()),
        achieved_gb_per_s=achieved,
        link=link,
        link_ratio=achieved / link.gb_per_s if achieved is not None and link is not None else None,
        link_na_reason=reason if link is None else ("no bytes recorded" if achieved is None else None),
    )


# ------------------------------------------------------------------ per range


def range_overlaps(trace: Trace, range_regex: str) -> list[RangeOverlap]:
    """Load vs compute per NVTX/annotation range name matching ``range_regex`` (re.search).

    Rows come in order of the first instance's start (a layer loop reads top to bottom).
    Raises InputError for a bad regex or one that matches no range.
    """
    r = select_ranges(trace, range_regex, "--per-range").reset_index(drop=True)
    if r.empty:
        raise InputError(trace.source, f"--per-range {range_regex!r} matches no NVTX/annotation range")
    work = _work_items(trace)
    is_gpu = (r["source"].astype(str) == GPU_RANGE_SOURCE).to_numpy()
    span_s, span_e, span_device = _gpu_spans(r, is_gpu, work)
    pair_range, pair_item = _overlapping(span_s, span_e, span_device, work)
    n = len(r)
    ws, we = work["start"].to_numpy(np.int64), work["end"].to_numpy(np.int64)
    s = np.maximum(ws[pair_item], span_s[pair_range])
    e = np.minimum(we[pair_item], span_e[pair_range])
    is_copy = work["is_copy"].to_numpy()[pair_item]
    copy_len = grouped_union_length(pair_range[is_copy], s[is_copy], e[is_copy], n)
    compute_len = grouped_union_length(pair_range[~is_copy], s[~is_copy], e[~is_copy], n)
    both = grouped_union_length(pair_range, s, e, n)
    hidden = copy_len + compute_len - both
    actual = span_e - span_s
    nbytes = np.bincount(
        pair_range[is_copy], weights=work["bytes"].to_numpy()[pair_item][is_copy], minlength=n
    )
    pageable = np.bincount(
        pair_range[is_copy], weights=work["pageable"].to_numpy()[pair_item][is_copy], minlength=n
    )
    frame = pd.DataFrame(
        {
            "name": r["name"].astype(str).to_numpy(),
            "source": r["source"].astype(str).to_numpy(),
            "first": r["start"].to_numpy(np.int64),
            "copy": copy_len,
            "compute": compute_len,
            "hidden": hidden,
            "actual": actual,
            "bytes": nbytes.astype(np.int64),
            "pageable": pageable.astype(np.int64),
            "instances": 1,
        }
    )
    grouped = frame.groupby(["name", "source"], sort=False).agg(
        first=("first", "min"),
        instances=("instances", "sum"),
        copy=("copy", "sum"),
        compute=("compute", "sum"),
        hidden=("hidden", "sum"),
        actual=("actual", "sum"),
        bytes=("bytes", "sum"),
        pageable=("pageable", "sum"),
    )
    grouped = grouped.sort_values("first", kind="stable").reset_index()
    return [_range_row(row) for row in grouped.to_dict("records")]


def _range_row(row: dict[Any, Any]) -> RangeOverlap:
    copy, compute, hidden, actual = (int(row[k]) for k in ("copy", "compute", "hidden", "actual"))
    serial = copy + compute
    return RangeOverlap(
        name=str(row["name"]),
        source=str(row["source"]),
        instances=int(row["instances"]),
        copy_ns=copy,
        compute_ns=compute,
        hidden_ns=hidden,
        exposed_copy_ns=copy - hidden,
        actual_ns=actual,
        copy_bytes=int(row["bytes"]),
        load_compute_ratio=copy / compute if compute > 0 else None,
        hidden_ratio=hidden / copy if copy > 0 else None,
        serial_efficiency=(serial - actual) / serial if serial > 0 else None,
        pageable_count=int(row["pageable"]),
        attribution="time" if row["source"] == GPU_RANGE_SOURCE else "launch",
    )


def _work_items(trace: Trace) -> pd.DataFrame:
    """Compute kernels and copies in one table with their launching call's thread and start."""
    k = trace.kernels[~comm_kernel_mask(trace)]
    m = trace.memcpy
    frame = pd.DataFrame(
        {
            "device": np.concatenate([k["device"].to_numpy(np.int64), m["device"].to_numpy(np.int64)]),
            "process": np.concatenate([k["process"].to_numpy(np.int64), m["process"].to_numpy(np.int64)]),
            "correlation": np.concatenate(
                [k["correlation"].to_numpy(np.int64), m["correlation"].to_numpy(np.int64)]
            ),
            "start": np.concatenate([k["start"].to_numpy(np.int64), m["start"].to_numpy(np.int64)]),
            "end": np.concatenate([k["end"].to_numpy(np.int64), m["end"].to_numpy(np.int64)]),
            "is_copy": np.concatenate([np.zeros(len(k), dtype=bool), np.ones(len(m), dtype=bool)]),
            "bytes": np.concatenate([np.zeros(len(k), dtype=np.int64), m["bytes"].to_numpy(np.int64)]),
            "pageable": np.concatenate([np.zeros(len(k), dtype=np.int64), pageable_mask(m).astype(np.int64)]),
        }
    )
    api = trace.api
    api = api[api["correlation"].to_numpy() >= 0].drop_duplicates(["process", "correlation"])
    joined = frame[["process", "correlation"]].merge(
        api[["process", "correlation", "thread", "start"]].rename(columns={"start": "launch_start"}),
        on=["process", "correlation"],
        how="left",
        sort=False,
    )
    frame["launch_thread"] = joined["thread"].fillna(-1).to_numpy(np.int64)
    frame["launch_start"] = joined["launch_start"].fillna(-1).to_numpy(np.int64)
    return frame


def _gpu_spans(
    ranges: pd.DataFrame, is_gpu: np.ndarray, work: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per range: the [start, end) on the GPU timeline it stands for, and the device.

    A GPU range is itself. A host range is projected: from the first start to the last end of
    the kernels and copies launched inside it (same process and thread, on process + correlation
    id), on the device of its first such item; a range that launched nothing gets an empty span.
    """
    n = len(ranges)
    span_s = np.where(is_gpu, ranges["start"].to_numpy(np.int64), 0)
    span_e = np.where(is_gpu, ranges["end"].to_numpy(np.int64), 0)
    device = np.where(is_gpu, ranges["device"].to_numpy(np.int64), -1)
    pair_range, pair_item = _launched_pairs(ranges, is_gpu, work)
    if pair_range.size == 0:
        return span_s, span_e, device
    ws, we = work["start"].to_numpy(np.int64)[pair_item], work["end"].to_numpy(np.int64)[pair_item]
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, pair_range, ws)
    np.maximum.at(last, pair_range, we)
    launched = (~is_gpu) & (last >= first)
    span_s = np.where(launched, first, span_s)
    span_e = np.where(launched, last, span_e)
    order = np.lexsort((ws, pair_range))
    leading = order[np.r_[True, pair_range[order][1:] != pair_range[order][:-1]]]
    first_device = np.full(n, -1, dtype=np.int64)
    first_device[pair_range[leading]] = work["device"].to_numpy(np.int64)[pair_item[leading]]
    return span_s, span_e, np.where(launched, first_device, device)


def _launched_pairs(
    ranges: pd.DataFrame, is_gpu: np.ndarray, work: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(host range index, work index) of the work whose launching call starts inside the range."""
    out_r: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    rs, re_ = ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64)
    launch_start = work["launch_start"].to_numpy(np.int64)
    launch_thread = work["launch_thread"].to_numpy(np.int64)
    wp = work["process"].to_numpy(np.int64)
    host_idx = np.flatnonzero(~is_gpu)
    rp, rt = ranges["process"].to_numpy(np.int64), ranges["thread"].to_numpy(np.int64)
    for process, thread in {(int(a), int(b)) for a, b in zip(rp[host_idx], rt[host_idx], strict=True)}:
        items = np.flatnonzero((launch_start >= 0) & (wp == process) & (launch_thread == thread))
        if items.size == 0:
            continue
        items = items[np.argsort(launch_start[items], kind="stable")]
        sel = host_idx[(rp[host_idx] == process) & (rt[host_idx] == thread)]
        lo = np.searchsorted(launch_start[items], rs[sel], side="left")
        hi = np.searchsorted(launch_start[items], re_[sel], side="left")
        _append_pairs(out_r, out_i, sel, items, lo, hi)
    return _concat(out_r), _concat(out_i)


def _overlapping(
    span_s: np.ndarray, span_e: np.ndarray, span_device: np.ndarray, work: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """(range index, work index) of the work on the range's device overlapping its span.

    Per device the work is sorted by start; an item overlapping [s, e) starts in
    [s − longest item, e), so two searchsorted calls bound the candidates.
    """
    out_r: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    ws, we, wd = (work[c].to_numpy(np.int64) for c in ("start", "end", "device"))
    for device in np.unique(span_device[(span_device >= 0) & (span_e > span_s)]):
        items = np.flatnonzero(wd == device)
        if items.size == 0:
            continue
        items = items[np.argsort(ws[items], kind="stable")]
        longest = int((we[items] - ws[items]).max())
        sel = np.flatnonzero((span_device == device) & (span_e > span_s))
        lo = np.searchsorted(ws[items], span_s[sel] - longest, side="left")
        hi = np.searchsorted(ws[items], span_e[sel], side="left")
        _append_pairs(out_r, out_i, sel, items, lo, hi)
    pair_range, pair_item = _concat(out_r), _concat(out_i)
    keep = we[pair_item] > span_s[pair_range]
    return pair_range[keep], pair_item[keep]


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _append_pairs(
    out_r: list[np.ndarray],
    out_i: list[np.ndarray],
    ranges: np.ndarray,
    items: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out_r.append(np.repeat(ranges, lengths).astype(np.int64))
    out_i.append(items[np.repeat(lo, lengths) + within])
