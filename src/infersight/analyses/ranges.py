"""NVTX / annotation summary (like ``nsys stats -r nvtx_sum``) and its projection onto the GPU.

A host range (NVTX push/pop, ``record_function``) only measures CPU time; what matters is the GPU
work it caused. The projection charges a host range with the kernels whose launching API call
(same process and thread, joined on process + correlation id) *starts* inside the range — so the
kernels of a ``cudaGraphLaunch`` count for the range that replayed the graph. A GPU-side range
(``gpu_user_annotation``) gets the kernels of its device that overlap it, clipped to it.

Everything is vectorised: per thread, launches are sorted by start with prefix sums of their
kernel count and time; each range is two ``searchsorted`` calls. The busy union per range is
computed on the (range, kernel) pairs with a grouped cumulative max. The summary groups on
integer category codes and lists at most :func:`max_range_names` names, so captures where every
range has its own name (``emit_nvtx``'s ``op_id = N``) cannot blow up the report.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.range_names import RangeNames, as_categorical
from infersight.analyses.results import RangeStat
from infersight.heap import release_freed_memory
from infersight.model import Trace, union_names
from infersight.model.arrays import join_keys
from infersight.model.emit_nvtx import first_rows

SUMMARY_SOURCES = ("nvtx", "user_annotation", "gpu_user_annotation")  # cpu_op: too many to list
GPU_SOURCE = "gpu_user_annotation"
# Above this many (range, kernel) pairs the per-range busy union is skipped (deeply nested NVTX
# over millions of kernels); counts and times are still exact.
MAX_BUSY_PAIRS = 20_000_000
# range_summary lists this many names (by total time), the rest folded into "other (k names)" rows
DEFAULT_MAX_RANGE_NAMES = 500
MAX_RANGE_NAMES_ENV = "INFERSIGHT_MAX_RANGE_NAMES"


class Projection:
    """Per-range GPU projection arrays aligned with a ranges frame (or the reason it is None)."""

    def __init__(self, n: int, na_reason: str | None = None) -> None:
        self.count = np.zeros(n, dtype=np.int64)
        self.time = np.zeros(n, dtype=np.int64)
        self.busy: np.ndarray | None = np.zeros(n, dtype=np.int64)
        self.na_reason = na_reason


def is_source(column: pd.Series, source: str) -> np.ndarray:
    """Rows whose categorical ``source`` is ``source``, compared on codes (no string per row)."""
    values = column.array
    if isinstance(values, pd.Categorical):
        matches = np.flatnonzero(np.asarray(values.categories.astype(str)) == source)
        return np.isin(values.codes, matches)
    return (column.astype(str) == source).to_numpy()


def selected_ranges(trace: Trace) -> pd.DataFrame:
    """The NVTX/annotation ranges summarised (cpu_op excluded), index reset (read only).

    An nsys trace's ranges are all NVTX ones: the table itself is returned then, not a copy of
    its millions of rows (~200 MB for 4.8M ranges).
    """
    r = trace.ranges
    keep = r["source"].isin(SUMMARY_SOURCES).to_numpy()
    if bool(keep.all()) and r.index.equals(pd.RangeIndex(len(r))):
        return r
    return r[keep].reset_index(drop=True)


def project_ranges(trace: Trace, ranges: pd.DataFrame) -> Projection:
    """Kernel count, kernel time and busy union of the GPU work each range caused.

    In a CPU capture (``device_kind == "cpu"``) the "kernels" are the thread's own operators, so
    a host range is charged with the operators of its thread that overlap it, like a GPU range.
    """
    proj = Projection(len(ranges))
    is_gpu = is_source(ranges["source"], GPU_SOURCE)
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
    The (process, correlation) join is done on one int64 key per row
    (:func:`~infersight.model.arrays.join_keys`) with a sort and ``searchsorted``: no pandas
    merge or MultiIndex on millions of rows.
    """
    k = trace.kernels
    api = trace.api[["process", "thread", "start", "correlation"]]  # not a copy of every API column
    api = api[api["correlation"].to_numpy() >= 0]
    kernel_corr = k["correlation"].to_numpy(np.int64)
    api_key, kernel_key = join_keys(
        api["process"].to_numpy(np.int64),
        api["correlation"].to_numpy(np.int64),
        k["process"].to_numpy(np.int64),
        kernel_corr,
    )
    first_call = _first_of_each_key(api_key)  # one call per (process, correlation)
    api = api[first_call]
    api_key = api_key[first_call]
    order = np.lexsort((api["start"].to_numpy(), api["thread"].to_numpy(), api["process"].to_numpy()))
    api = api.iloc[order].reset_index(drop=True)
    api_key = api_key[order]
    key_order = np.argsort(api_key, kind="stable")
    sorted_keys = api_key[key_order]
    at = np.searchsorted(sorted_keys, kernel_key).clip(0, max(len(sorted_keys) - 1, 0))
    matched = np.zeros(len(k), dtype=bool)
    if len(sorted_keys):  # kernels with correlation -1 (unknown) are never tied to a call
        matched = (kernel_corr >= 0) & (sorted_keys[at] == kernel_key)
    rows = np.flatnonzero(matched)
    pos = key_order[at[rows]].astype(np.int64)
    order = np.lexsort((rows, pos))
    rows, pos = rows[order], pos[order]
    dur = (k["end"].to_numpy(np.int64) - k["start"].to_numpy(np.int64))[rows]
    api["count"] = np.bincount(pos, minlength=len(api)).astype(np.int64)
    time = np.zeros(len(api), dtype=np.int64)
    np.add.at(time, pos, dur)
    api["time"] = time
    offsets = np.concatenate([[0], np.cumsum(api["count"].to_numpy())]).astype(np.int64)
    return api, rows.astype(np.int64), offsets


def _first_of_each_key(keys: np.ndarray) -> np.ndarray:
    """Mask of the first row of each distinct key (``~pd.Series(keys).duplicated()``).

    By a stable sort, whose runs of equal keys start at their first row: API keys come nearly
    sorted (calls in time order, correlation ids rising), so the sort is close to linear, while
    pandas' hash pass over the 1.9M calls of 1M kernels took ~0.28 s.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[order[1:][sorted_keys[1:] == sorted_keys[:-1]]] = False
    return first


_MASKED_GROUPS = 32


def _sorted_groups(keys: np.ndarray, selected: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key, row indices) of the selected rows, by key ascending, rows ascending within a key.

    A few keys (host threads, devices): one mask per key, whose rows are all that is kept (a
    sort of 4.8M NVTX ranges by thread held ~150 MB of orders and sorted copies). Many keys: one
    stable sort, not one full mask per key.
    """
    distinct = pd.unique(keys)
    if len(distinct) <= _MASKED_GROUPS:
        found = ((key, np.flatnonzero(selected & (keys == key))) for key in np.sort(distinct).tolist())
        return [(key, rows) for key, rows in found if len(rows)]
    rows = np.flatnonzero(selected)
    if not len(rows):
        return []
    order = np.argsort(keys[rows], kind="stable")
    rows = rows[order]
    sorted_keys = keys[rows]
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    firsts = np.concatenate([[0], cuts])
    return list(zip(sorted_keys[firsts].tolist(), np.split(rows, cuts), strict=True))


def _project_host_ranges(trace: Trace, ranges: pd.DataFrame, host: np.ndarray, proj: Projection) -> None:
    api, kernel_order, offsets = _launch_table(trace)
    count_cum = offsets
    time_cum = np.concatenate([[0], np.cumsum(api["time"].to_numpy())]).astype(np.int64)
    # per host range: its first kernel in kernel_order and its number of kernels
    k_lo = np.zeros(len(ranges), dtype=np.int64)
    lengths = np.zeros(len(ranges), dtype=np.int64)
    starts = api["start"].to_numpy(np.int64)
    rs, re_ = ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64)
    # host thread of every launch and every range as one code (a thread's launches are contiguous)
    thread_key, range_key = join_keys(
        api["process"].to_numpy(np.int64),
        api["thread"].to_numpy(np.int64),
        ranges["process"].to_numpy(np.int64),
        ranges["thread"].to_numpy(np.int64),
    )
    new_block = np.ones(len(api), dtype=bool)
    new_block[1:] = thread_key[1:] != thread_key[:-1]
    block_first = np.flatnonzero(new_block)
    block_end = np.append(block_first[1:], len(api))
    block_of_key = dict(zip(thread_key[block_first].tolist(), range(len(block_first)), strict=True))
    for key, rows in _sorted_groups(range_key, host):  # per host thread
        block = block_of_key.get(int(key))
        if block is None:  # a thread that launched nothing
            continue
        first, end = int(block_first[block]), int(block_end[block])
        block_starts = starts[first:end]
        for low in range(0, len(rows), RANGES_PER_PASS):  # 1M ranges at a time: small temporaries
            part = rows[low : low + RANGES_PER_PASS]
            lo = first + np.searchsorted(block_starts, rs[part], side="left")
            hi = first + np.searchsorted(block_starts, re_[part], side="left")
            proj.count[part] = count_cum[hi] - count_cum[lo]
            proj.time[part] = time_cum[hi] - time_cum[lo]
            k_lo[part] = offsets[lo]
            lengths[part] = offsets[hi] - offsets[lo]
    # per-range arrays (4.8M ranges) and the launch table are freed as soon as they are used up
    del range_key, thread_key, api, starts
    if lengths.sum() > MAX_BUSY_PAIRS:
        proj.busy = None
        return
    assert proj.busy is not None
    kernel_starts, kernel_ends = (
        trace.kernels["start"].to_numpy(np.int64),
        trace.kernels["end"].to_numpy(np.int64),
    )
    # 1M ranges at a time (a range's union needs only its own kernels): the (range, kernel)
    # pairs of all 4.8M NVTX ranges of 1M kernels and their sort keys were ~480 MB at once
    for low in range(0, len(ranges), RANGES_PER_PASS):
        chunk = slice(low, low + RANGES_PER_PASS)
        part_lengths = lengths[chunk]
        group = np.repeat(np.arange(len(part_lengths)), part_lengths)
        within = np.arange(len(group)) - np.repeat(np.cumsum(part_lengths) - part_lengths, part_lengths)
        rows = kernel_order[np.repeat(k_lo[chunk], part_lengths) + within]
        del within
        busy = grouped_union_length(group, kernel_starts[rows], kernel_ends[rows], len(part_lengths))
        proj.busy[chunk] = np.where(host[chunk], busy, proj.busy[chunk])


RANGES_PER_PASS = 1 << 20  # per-range passes over millions of ranges go in pieces of this many


def grouped_union_length(
    group: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_groups: int
) -> np.ndarray:
    """Union length of the intervals of each group (vectorised grouped sort + cumulative max).

    Fast path: each group is shifted to its own band of one int64 axis (``group * span + t``),
    so one argsort orders by (group, start) and one ``maximum.accumulate`` is the running end of
    every group at once. The pairs come grouped and nearly start-ordered, which the stable sort
    (timsort) handles in close to linear time. Falls back to lexsort + grouped cummax when the
    bands would not fit in int64.
    """
    out = np.zeros(n_groups, dtype=np.int64)
    if group.size == 0:
        return out
    group = group.astype(np.int64, copy=False)
    base = int(min(starts.min(), ends.min()))
    span = int(max(starts.max(), ends.max())) - base + 1
    if n_groups * span < 2**62:
        # in place where it can be, each temporary dropped once used: millions of pairs (the
        # NVTX ranges of 1M kernels) make every array here tens of MB. key_end holds the band
        # (group * span - base) until the ends are added to it.
        key_end = group * span
        key_end -= base
        key_start = starts + key_end
        key_end += ends
        order = np.argsort(key_start, kind="stable")
        s = key_start[order]
        del key_start
        running = key_end[order]
        del key_end
        np.maximum.accumulate(running, out=running)
        g = group[order]
        del order
    else:
        order = np.lexsort((starts, group))
        g, s = group[order], starts[order]
        running = pd.Series(ends[order]).groupby(g).cummax().to_numpy(np.int64)
    new_block = np.ones(g.size, dtype=bool)
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] > running[:-1])
    first = np.flatnonzero(new_block)
    last = np.append(first[1:] - 1, g.size - 1)
    np.add.at(out, g[first], running[last] - s[first])
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
    kernel_groups = dict(_sorted_groups(kernel_key.astype(np.int64), np.ones(len(k), dtype=bool)))
    all_starts, all_ends = k["start"].to_numpy(np.int64), k["end"].to_numpy(np.int64)
    for key, sel in _sorted_groups(range_key.astype(np.int64), selected):
        on = kernel_groups.get(key, np.empty(0, dtype=np.int64))
        ks, ke = all_starts[on], all_ends[on]
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


def max_range_names() -> int:
    """How many range names :func:`range_summary` lists before folding the rest (env override)."""
    raw = os.environ.get(MAX_RANGE_NAMES_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_RANGE_NAMES
    except ValueError:
        value = DEFAULT_MAX_RANGE_NAMES
    return max(value, 1)


@dataclass(frozen=True)
class RangeLabels:
    """What the summary groups one trace's ranges by: names and categorical labels, and durations."""

    name: RangeNames
    domain: pd.Categorical
    source: pd.Categorical
    duration: np.ndarray

    @classmethod
    def of(cls, ranges: pd.DataFrame) -> RangeLabels:
        return cls(
            name=RangeNames.of(ranges),
            domain=as_categorical(ranges["domain"]),
            source=as_categorical(ranges["source"]),
            duration=(ranges["end"] - ranges["start"]).to_numpy(np.int64),
        )


@dataclass(frozen=True)
class RangeFigures:
    """The GPU work of one trace's ranges (:func:`project_ranges`), one value per range."""

    gpu_count: np.ndarray
    gpu_time: np.ndarray
    gpu_busy: np.ndarray  # -1: busy union skipped for this range (too many pairs)
    host: np.ndarray
    na_reason: str | None  # why host ranges of this trace have no projection

    @classmethod
    def of(cls, trace: Trace, ranges: pd.DataFrame) -> RangeFigures:
        with PER_RANGE_PASS:
            proj = project_ranges(trace, ranges)
        host = ~is_source(ranges["source"], GPU_SOURCE)
        busy = proj.busy if proj.busy is not None else np.where(host, -1, 0)
        return cls(
            gpu_count=proj.count,
            gpu_time=proj.time,
            gpu_busy=np.asarray(busy, dtype=np.int64),
            host=host,
            na_reason=proj.na_reason,
        )


@dataclass(frozen=True)
class RangeRows:
    """The summarised ranges of one trace: names, categorical labels and per-range figures."""

    name: RangeNames
    domain: pd.Categorical
    source: pd.Categorical
    duration: np.ndarray
    gpu_count: np.ndarray
    gpu_time: np.ndarray
    gpu_busy: np.ndarray  # -1: busy union skipped for this range (too many pairs)
    host: np.ndarray
    na_reason: str | None  # why host ranges of this trace have no projection


class _PerRangePass:
    """A lock, and on taking it the C heaps' free pages go back to the OS (:mod:`infersight.heap`).

    The profile runs its halves on two threads; the passes over every range (the projection and
    grouping here, the attribution's host ranges) each hold hundreds of MB of per-range
    temporaries for the millions of NVTX ranges of a big export. One at a time, their peaks do
    not add up; and what the pass before freed inside the heaps is not counted twice either
    (4.8M emit_nvtx ranges: peak RSS ~1,340 -> ~1,310 MiB over three runs each).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()
        release_freed_memory()

    def __exit__(self, *_: object) -> None:
        self._lock.release()


PER_RANGE_PASS = _PerRangePass()


def range_rows(trace: Trace) -> RangeRows | None:
    r = selected_ranges(trace)
    if r.empty:
        return None
    figures = RangeFigures.of(trace, r)
    labels = RangeLabels.of(r)
    return RangeRows(
        name=labels.name,
        domain=labels.domain,
        source=labels.source,
        duration=labels.duration,
        gpu_count=figures.gpu_count,
        gpu_time=figures.gpu_time,
        gpu_busy=figures.gpu_busy,
        host=figures.host,
        na_reason=figures.na_reason,
    )


def _union(parts: list[pd.Categorical]) -> pd.Categorical:
    return union_names(parts)


def range_summary(traces: list[Trace], *, max_names: int | None = -1) -> list[RangeStat]:
    """One row per (name, domain, source) over all traces, by total range time descending.

    At most ``max_names`` rows (default :func:`max_range_names`; ``None``: no limit) are the
    names with the largest total time; the other names of each (domain, source) are folded into
    one last row named ``other (<k> names)`` whose statistics are over all their ranges. Why:
    ``emit_nvtx``-style captures give every range its own name (``aten::mm, op_id = 1234``), and
    one row object per name would cost more memory than the trace itself.

    Grouping is on integer codes (name groups, domain and source categories combined into one
    int64 key), never on strings; with compact names only the rows shown get a name string.
    The groups are found before the GPU projection, whose per-range figures (~150 MB for 4.8M
    ranges) then are not held through the grouping's hash pass (~230 MB at once).
    """
    limit = max_range_names() if max_names == -1 else max_names
    picked = [(trace, r) for trace in traces if not (r := selected_ranges(trace)).empty]
    if not picked:
        return []
    labels = [RangeLabels.of(r) for _, r in picked]
    with PER_RANGE_PASS:
        groups = _range_groups(labels, limit)
    figures = [RangeFigures.of(trace, r) for trace, r in picked]
    del picked
    with PER_RANGE_PASS:
        return _grouped_summary(groups, labels, figures)


@dataclass(frozen=True)
class _RangeGroups:
    """The summary's rows: each range's row, and per row (key, names folded into it; 0: none)."""

    final: np.ndarray
    labels: list[tuple[int, int]]
    shown_rows: dict[int, int]  # key of a row shown by name -> its first range
    names: RangeNames
    domains: pd.Categorical
    sources: pd.Categorical
    n_pairs: int  # (domain, source) pairs: a row's pair is its key % n_pairs


def _range_groups(parts: list[RangeLabels], limit: int | None) -> _RangeGroups:
    """Group the traces' ranges by (name, domain, source) and fold all but the ``limit`` largest."""
    names = RangeNames.joined([p.name for p in parts])
    domains = _union([p.domain for p in parts])
    sources = _union([p.source for p in parts])
    n_sources = max(len(sources.categories), 1)
    n_pairs = max(len(domains.categories), 1) * n_sources
    name_key = names.keys(n_pairs)
    key = name_key * n_pairs + domains.codes.astype(np.int64) * n_sources + sources.codes
    del name_key
    group, group_keys = pd.factorize(key)
    del key
    group_keys = np.asarray(group_keys, dtype=np.int64)
    final, labels = fold_small_groups(group, group_keys, _joined([p.duration for p in parts]), limit, n_pairs)
    shown_rows = _first_row_of_keys(group, group_keys, [key for key, folded in labels if not folded])
    return _RangeGroups(final, labels, shown_rows, names, domains, sources, n_pairs)


def _grouped_summary(
    groups: _RangeGroups, parts: list[RangeLabels], figures: list[RangeFigures]
) -> list[RangeStat]:
    """The summary rows of the traces' ranges (see :func:`range_summary`)."""
    reasons = sorted({f.na_reason for f in figures if f.na_reason is not None})
    reason_code = _joined(  # int8: a handful of reasons (an int64 column was 37 MB for 4.8M ranges)
        [np.where(f.host, reasons.index(f.na_reason), -1).astype(np.int8) if f.na_reason
         else np.full(len(f.host), -1, dtype=np.int8)
         for f in figures]
    )  # fmt: skip
    frame = pd.DataFrame(
        {
            "group": groups.final,
            "duration": _joined([p.duration for p in parts]),
            "gpu_count": _joined([f.gpu_count for f in figures]),
            "gpu_time": _joined([f.gpu_time for f in figures]),
            "gpu_busy": _joined([f.gpu_busy for f in figures]),
            "reason": reason_code,
        },
        copy=False,  # one column per array, not a copy of all six into one block (~230 MB for 4.8M ranges)
    )
    grouped = frame.groupby("group", sort=True)
    stats = grouped["duration"].agg(["count", "sum", "mean", "median", "min", "max", "std"])
    stats["std"] = stats["std"].fillna(0.0)
    for column in ("gpu_count", "gpu_time", "gpu_busy"):  # one at a time: no 3-column block copy
        stats[column] = grouped[column].sum()
    stats["busy_unknown"] = grouped["gpu_busy"].min() < 0
    stats["reason"] = grouped["reason"].max()
    labels = groups.labels
    stats["folded"] = [labels[g][1] > 0 for g in stats.index.tolist()]
    stats = stats.sort_values(["folded", "sum"], ascending=[True, False], kind="stable")
    domains, sources, n_pairs = groups.domains, groups.sources, groups.n_pairs
    n_sources = max(len(sources.categories), 1)
    out = []
    for group_id, row in zip(stats.index.tolist(), stats.to_dict("records"), strict=True):
        code, folded_names = labels[group_id]
        pair = code % n_pairs
        reason = reasons[int(row["reason"])] if row["reason"] >= 0 else None
        name = groups.names.label_of_row(groups.shown_rows[code]) if not folded_names else ""
        domain, source = str(domains.categories[pair // n_sources]), str(sources.categories[pair % n_sources])
        out.append(range_stat(name, domain, source, folded_names, row, reason))
    return out


def _first_row_of_keys(group: np.ndarray, group_keys: np.ndarray, wanted: list[int]) -> dict[int, int]:
    """The first range of each group whose key is in ``wanted`` (the rows shown), by key.

    ``group`` numbers the groups in order of first appearance, so a group's first range is
    where its number first exceeds every number before it.
    """
    first = first_rows(group)
    # a hash lookup of the few wanted keys (np.isin sorts all keys: ~220 MB for 4.6M groups)
    shown = np.flatnonzero(pd.Series(group_keys, copy=False).isin(wanted).to_numpy())
    return dict(zip(group_keys[shown].tolist(), first[shown].tolist(), strict=True))


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays one after the other; a single one as it is (``np.concatenate`` would copy it)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def range_stat(
    name: str, domain: str, source: str, folded_names: int, row: Mapping[Hashable, Any], reason: str | None
) -> RangeStat:
    """One row of the range summary from its group's statistics (``folded_names`` > 0: the
    "other" row of that many names; ``reason``: why the GPU projection is not applicable)."""
    return RangeStat(
        name=f"other ({folded_names:,} names)" if folded_names else name,
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


def fold_small_groups(
    group: np.ndarray, group_keys: np.ndarray, duration: np.ndarray, limit: int | None, n_pairs: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Final row id per range, and per final row (key, number of names folded into it; 0: none).

    The ``limit`` groups with the largest total duration (ties: first seen) keep their row;
    the others are merged per (domain, source) pair, the pair being ``key % n_pairs``.
    """
    n_groups = len(group_keys)
    if limit is None or n_groups <= limit:
        return group, [(int(k), 0) for k in group_keys.tolist()]
    totals = np.bincount(group, weights=duration, minlength=n_groups)
    # the limit-th largest total by partition (O(n)); only the kept groups are sorted
    threshold = np.partition(totals, n_groups - limit)[n_groups - limit]
    above = np.flatnonzero(totals > threshold)
    tied = np.flatnonzero(totals == threshold)[: limit - len(above)]  # first seen wins a tie
    kept = np.concatenate([above, tied])
    kept = kept[np.lexsort((kept, -totals[kept]))]
    is_kept = np.zeros(n_groups, dtype=bool)
    is_kept[kept] = True
    rest = np.flatnonzero(~is_kept)
    final_of_group = np.empty(n_groups, dtype=np.int32)  # at most `limit` + a few rows
    final_of_group[kept] = np.arange(limit)
    pair_codes, pairs = pd.factorize(group_keys[rest] % n_pairs)
    final_of_group[rest] = limit + pair_codes
    folded = np.bincount(pair_codes, minlength=len(pairs))
    labels = [(int(k), 0) for k in group_keys[kept].tolist()]
    labels += [(int(p), int(n)) for p, n in zip(np.asarray(pairs).tolist(), folded.tolist(), strict=True)]
    return final_of_group[group], labels
