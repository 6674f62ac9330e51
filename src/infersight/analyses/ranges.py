"""NVTX / annotation summary (like ``nsys stats -r nvtx_sum``) and its projection onto the GPU.

A host range (NVTX push/pop, ``record_function``) only measures CPU time; what matters is the GPU
work it caused. The projection charges a host range with the kernels whose launching API call
(same process and thread, joined on process + correlation id) *starts* inside the range — so the
kernels of a ``cudaGraphLaunch`` count for the range that replayed the graph. A GPU-side range
(``gpu_user_annotation``) gets the kernels of its device that overlap it, clipped to it.

Everything is vectorised: per thread, launches are sorted by start with prefix sums of their
kernel count and time; each range is two ``searchsorted`` calls. The busy union per range is
computed on the (range, kernel) pairs with a grouped cumulative max.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.results import RangeStat
from infersight.model import Trace

SUMMARY_SOURCES = ("nvtx", "user_annotation", "gpu_user_annotation")  # cpu_op: too many to list
GPU_SOURCE = "gpu_user_annotation"
# Above this many (range, kernel) pairs the per-range busy union is skipped (deeply nested NVTX
# over millions of kernels); counts and times are still exact.
MAX_BUSY_PAIRS = 20_000_000


class Projection:
    """Per-range GPU projection arrays aligned with a ranges frame (or the reason it is None)."""

    def __init__(self, n: int, na_reason: str | None = None) -> None:
        self.count = np.zeros(n, dtype=np.int64)
        self.time = np.zeros(n, dtype=np.int64)
        self.busy: np.ndarray | None = np.zeros(n, dtype=np.int64)
        self.na_reason = na_reason


def selected_ranges(trace: Trace) -> pd.DataFrame:
    """The NVTX/annotation ranges summarised (cpu_op excluded), index reset."""
    r = trace.ranges
    return r[r["source"].isin(SUMMARY_SOURCES).to_numpy()].reset_index(drop=True)


def project_ranges(trace: Trace, ranges: pd.DataFrame) -> Projection:
    """Kernel count, kernel time and busy union of the GPU work each range caused.

    In a CPU capture (``device_kind == "cpu"``) the "kernels" are the thread's own operators, so
    a host range is charged with the operators of its thread that overlap it, like a GPU range.
    """
    proj = Projection(len(ranges))
    is_gpu = (ranges["source"].astype(str) == GPU_SOURCE).to_numpy()
    k = trace.kernels
    if is_gpu.any():
        _project_overlapping(trace, ranges, is_gpu, k["device"].to_numpy(), ranges["device"].to_numpy(), proj)
    host = ~is_gpu
    if not host.any():
        return proj
    if trace.device_kind == "cpu":
        _project_overlapping(trace, ranges, host, k["stream"].to_numpy(), ranges["thread"].to_numpy(), proj)
        return proj
    reason = _host_projection_na(trace)
    if reason is not None:
        proj.na_reason = reason
    else:
        _project_host_ranges(trace, ranges, host, proj)
    return proj


def _host_projection_na(trace: Trace) -> str | None:
    if trace.api.empty:
        return "no CUDA/HIP API calls in the trace: kernels cannot be tied to host ranges"
    if (trace.kernels["correlation"].to_numpy() < 0).all():
        return "kernels carry no correlation id: they cannot be tied to their launch"
    return None


def _launch_table(trace: Trace) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Launches (API rows with kernels) sorted by (process, thread, start), and kernel order.

    Returns the launch frame (with ``count``/``time`` per launch), the kernel row indices sorted
    by their launch position, and per-launch offsets into that order (length n_launch + 1).
    """
    k = trace.kernels
    api = trace.api
    api = api[api["correlation"].to_numpy() >= 0].drop_duplicates(["process", "correlation"])
    api = (
        api[["process", "thread", "start", "correlation"]]
        .sort_values(["process", "thread", "start"], kind="stable")
        .reset_index(drop=True)
    )
    api["pos"] = np.arange(len(api), dtype=np.int64)
    kk = pd.DataFrame(
        {
            "process": k["process"].to_numpy(),
            "correlation": k["correlation"].to_numpy(),
            "row": np.arange(len(k), dtype=np.int64),
            "dur": (k["end"] - k["start"]).to_numpy(np.int64),
        }
    ).merge(api[["process", "correlation", "pos"]], on=["process", "correlation"], how="inner")
    kk = kk.sort_values(["pos", "row"], kind="stable")
    pos = kk["pos"].to_numpy(np.int64)
    api["count"] = np.bincount(pos, minlength=len(api)).astype(np.int64)
    api["time"] = np.bincount(pos, weights=kk["dur"].to_numpy(), minlength=len(api)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(api["count"].to_numpy())]).astype(np.int64)
    return api, kk["row"].to_numpy(np.int64), offsets


def _project_host_ranges(trace: Trace, ranges: pd.DataFrame, host: np.ndarray, proj: Projection) -> None:
    api, kernel_order, offsets = _launch_table(trace)
    count_cum = offsets
    time_cum = np.concatenate([[0], np.cumsum(api["time"].to_numpy())]).astype(np.int64)
    lo = np.zeros(len(ranges), dtype=np.int64)
    hi = np.zeros(len(ranges), dtype=np.int64)
    starts = api["start"].to_numpy(np.int64)
    block_bounds = api.groupby(["process", "thread"], sort=False)["pos"].agg(["min", "max"]).reset_index()
    rp, rt = ranges["process"].to_numpy(), ranges["thread"].to_numpy()
    rs, re_ = ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64)
    for process, thread, first, last in block_bounds.itertuples(index=False, name=None):  # per host thread
        sel = host & (rp == process) & (rt == thread)
        if not sel.any():
            continue
        block = starts[first : last + 1]
        lo[sel] = first + np.searchsorted(block, rs[sel], side="left")
        hi[sel] = first + np.searchsorted(block, re_[sel], side="left")
    proj.count[host] = (count_cum[hi] - count_cum[lo])[host]
    proj.time[host] = (time_cum[hi] - time_cum[lo])[host]
    k_lo, k_hi = offsets[lo], offsets[hi]
    lengths = np.where(host, k_hi - k_lo, 0)
    if lengths.sum() > MAX_BUSY_PAIRS:
        proj.busy = None
        return
    group = np.repeat(np.arange(len(ranges)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows = kernel_order[np.repeat(k_lo, lengths) + within]
    ks = trace.kernels["start"].to_numpy(np.int64)[rows]
    ke = trace.kernels["end"].to_numpy(np.int64)[rows]
    busy = grouped_union_length(group, ks, ke, len(ranges))
    assert proj.busy is not None
    proj.busy[host] = busy[host]


def grouped_union_length(
    group: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_groups: int
) -> np.ndarray:
    """Union length of the intervals of each group (vectorised grouped sort + cumulative max)."""
    out = np.zeros(n_groups, dtype=np.int64)
    if group.size == 0:
        return out
    order = np.lexsort((starts, group))
    g, s, e = group[order], starts[order], ends[order]
    running = pd.Series(e).groupby(g).cummax().to_numpy(np.int64)
    new_block = np.ones(g.size, dtype=bool)
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] > running[:-1])
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, g.size - 1)
    block_len = running[last] - s[first]
    np.add.at(out, g[first], block_len)
    return out


def _project_overlapping(
    trace: Trace,
    ranges: pd.DataFrame,
    selected: np.ndarray,
    kernel_key: np.ndarray,
    range_key: np.ndarray,
    proj: Projection,
) -> None:
    """Charge each selected range with the kernels of the same key (device or thread) overlapping it.

    Counts kernels that overlap the range; time and busy are clipped to the range.
    """
    k = trace.kernels
    rs, re_ = ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64)
    for key in np.unique(range_key[selected]):
        sel = selected & (range_key == key)
        on = kernel_key == key
        ks, ke = k["start"].to_numpy(np.int64)[on], k["end"].to_numpy(np.int64)[on]
        s_sorted, e_sorted = np.sort(ks), np.sort(ke)
        # kernels overlapping [a, b): started before b minus ended at or before a
        started = np.searchsorted(s_sorted, re_[sel], side="left")
        ended = np.searchsorted(e_sorted, rs[sel], side="right")
        proj.count[sel] = started - ended
        proj.time[sel] = _active_integral(s_sorted, e_sorted, re_[sel]) - _active_integral(
            s_sorted, e_sorted, rs[sel]
        )
        us, ue = intervals.union(ks, ke)
        assert proj.busy is not None
        proj.busy[sel] = intervals.covered_before(us, ue, re_[sel]) - intervals.covered_before(
            us, ue, rs[sel]
        )


def _active_integral(s_sorted: np.ndarray, e_sorted: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Σ over kernels of their running time before t: Σ_{s<t}(t-s) - Σ_{e<t}(t-e)."""
    cs = np.concatenate([[0], np.cumsum(s_sorted)])
    ce = np.concatenate([[0], np.cumsum(e_sorted)])
    ns = np.searchsorted(s_sorted, t, side="left")
    ne = np.searchsorted(e_sorted, t, side="left")
    return (ns * t - cs[ns]) - (ne * t - ce[ne])


def range_summary(traces: list[Trace]) -> list[RangeStat]:
    """One row per (name, domain, source) over all traces, by total range time descending."""
    frames = []
    reasons: dict[tuple[str, str, str], str] = {}
    for trace in traces:
        r = selected_ranges(trace)
        if r.empty:
            continue
        proj = project_ranges(trace, r)
        frame = pd.DataFrame(
            {
                "name": r["name"].astype(str).to_numpy(),
                "domain": r["domain"].astype(str).to_numpy(),
                "source": r["source"].astype(str).to_numpy(),
                "duration": (r["end"] - r["start"]).to_numpy(np.int64),
                "gpu_count": proj.count,
                "gpu_time": proj.time,
                "gpu_busy": proj.busy if proj.busy is not None else np.zeros(len(r), dtype=np.int64),
            }
        )
        host = (frame["source"] != GPU_SOURCE).to_numpy()
        if proj.na_reason is not None:
            keys = frame.loc[host, ["name", "domain", "source"]].drop_duplicates()
            for name, domain, source in keys.itertuples(index=False, name=None):
                reasons[(name, domain, source)] = proj.na_reason
        if proj.busy is None:
            frame["gpu_busy"] = np.where(host, -1, frame["gpu_busy"])
        frames.append(frame)
    if not frames:
        return []
    allr = pd.concat(frames, ignore_index=True)
    grouped = allr.groupby(["name", "domain", "source"], sort=False)
    stats = grouped["duration"].agg(["count", "sum", "mean", "median", "min", "max", "std"])
    stats["std"] = stats["std"].fillna(0.0)
    gpu = grouped[["gpu_count", "gpu_time", "gpu_busy"]].sum()
    stats["busy_unknown"] = grouped["gpu_busy"].min() < 0
    stats = stats.join(gpu).sort_values("sum", ascending=False).reset_index()
    out = []
    for row in stats.to_dict("records"):
        name, domain, source = str(row["name"]), str(row["domain"]), str(row["source"])
        reason = reasons.get((name, domain, source))
        out.append(
            RangeStat(
                name=name,
                domain=domain,
                source=source,
                count=int(row["count"]),
                total_ns=int(row["sum"]),
                avg_ns=float(row["mean"]),
                median_ns=float(row["median"]),
                min_ns=int(row["min"]),
                max_ns=int(row["max"]),
                std_ns=float(row["std"]),
                gpu_kernel_count=None if reason else int(row["gpu_count"]),
                gpu_time_ns=None if reason else int(row["gpu_time"]),
                gpu_busy_ns=None if reason or bool(row["busy_unknown"]) else int(row["gpu_busy"]),
                projection_na_reason=reason,
            )
        )
    return out
