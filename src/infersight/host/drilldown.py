"""Kernel-level drill-down (methodology §4): gaps by likely host cause, the largest gaps and what the host
was doing then, graph coverage, and which functional group the gaps precede.

A gap is an idle stretch between consecutive busy blocks of a device. The kernel that ends it was
launched by an API call (joined on process + correlation); on that call's thread we look up the
API call in progress at the gap start (a sync or a blocking copy) and the innermost range open
mid-gap (the Python/NVTX scope the host was in), and how far into the gap the launch was issued
(a launch issued only during the gap means the host, not the GPU, was late).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.categories import categorize
from infersight.analyses.kernel_names import simplify_names
from infersight.analyses.timeline import bucket_gaps, device_timelines
from infersight.host.config import HostConfig
from infersight.host.metrics import nccl_mask
from infersight.host.results import CauseBucket, DrillDown, GapCause, IterationSet, LayerPatternStat
from infersight.model import Trace

OP_ID_SUFFIX = re.compile(r",\s*(seq|op_id|sizes|stream)\s*=\s*[^,]*")


def normalise_range_name(name: str) -> str:
    """A range name without per-call ids (PyTorch emit_nvtx ``, seq = N, op_id = M``)."""
    return OP_ID_SUFFIX.sub("", name).strip()


def cause_buckets(lengths: np.ndarray, config: HostConfig) -> list[CauseBucket]:
    """Histogram over the configured edges, each bucket labelled with its usual host cause."""
    cfg = config.section("drilldown")
    edges = np.asarray(cfg["bucket_edges_ns"], dtype=np.int64)
    causes = list(cfg["bucket_causes"])
    which = np.searchsorted(edges, lengths, side="right") - 1
    out = []
    for i, lower in enumerate(edges.tolist()):
        sel = which == i
        out.append(
            CauseBucket(
                lower_ns=int(lower),
                upper_ns=int(edges[i + 1]) if i + 1 < edges.size else None,
                cause=str(causes[i]) if i < len(causes) else "",
                count=int(sel.sum()),
                total_ns=int(lengths[sel].sum()),
            )
        )
    return out


def _bucket_cause(length: int, config: HostConfig) -> str:
    cfg = config.section("drilldown")
    edges = np.asarray(cfg["bucket_edges_ns"], dtype=np.int64)
    i = int(np.searchsorted(edges, length, side="right") - 1)
    causes = list(cfg["bucket_causes"])
    return str(causes[i]) if 0 <= i < len(causes) else ""


def drill_down(
    traces: list[Trace], frames: list[pd.DataFrame], iterations: list[IterationSet], config: HostConfig
) -> DrillDown:
    """Gap histogram, top-N gaps with host activity, graph coverage and gap by functional group."""
    top_n = int(config.section("drilldown")["top_gaps"])
    lengths: list[np.ndarray] = []
    candidates: list[tuple[int, int, int, int, int]] = []  # length, trace, device, gap start, gap end
    group_parts: list[pd.DataFrame] = []
    for t_index, frame in enumerate(frames):
        for device in np.unique(frame["device"].to_numpy()):  # per device (few)
            on = frame[frame["device"].to_numpy() == device]
            us, ue = intervals.union(on["start"].to_numpy(np.int64), on["end"].to_numpy(np.int64))
            g0, g1 = ue[:-1], us[1:]
            gl = g1 - g0
            lengths.append(gl)
            top = np.argsort(gl, kind="stable")[::-1][:top_n]
            candidates += [(int(gl[i]), t_index, int(device), int(g0[i]), int(g1[i])) for i in top]
            steady = {st.index for st in iterations[t_index].steady() if st.device == device}
            group_parts.append(_gaps_before_kernels(on, g1, gl, steady))
    all_lengths = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
    candidates.sort(key=lambda c: -c[0])
    top_gaps = [
        _explain_gap(traces[t], frames[t], iterations[t], device, g0, g1, config)
        for _, t, device, g0, g1 in candidates[:top_n]
    ]
    coverage = _graph_coverage(traces)
    pattern, pattern_na = _layer_pattern(group_parts)
    return DrillDown(
        buckets=cause_buckets(all_lengths, config),
        simple_buckets=bucket_gaps(all_lengths),
        top_gaps=top_gaps,
        layer_pattern=pattern,
        layer_pattern_na_reason=pattern_na,
        graph_coverage=coverage[0],
        graph_kernel_count=coverage[1],
        eager_kernel_count=coverage[2],
        graph_coverage_na_reason=coverage[3],
    )


def _gaps_before_kernels(
    on: pd.DataFrame, gap_ends: np.ndarray, gap_lengths: np.ndarray, steady_steps: set[int]
) -> pd.DataFrame:
    """Each gap with the functional group and simplified name of the kernel that ends it.

    ``inside`` marks gaps between two kernels of the same steady-state step: the per-layer
    repeating pattern, without the step-boundary gaps (sampling, scheduling) around it.
    """
    if gap_ends.size == 0:
        return pd.DataFrame({"group": [], "kernel": [], "gap": [], "inside": []})
    starts = on["start"].to_numpy(np.int64)
    idx = np.minimum(np.searchsorted(starts, gap_ends, side="left"), starts.size - 1)
    names = on["name"].astype("category")
    distinct = pd.Categorical(names.cat.categories.astype(str))
    group_of = np.asarray(categorize(distinct), dtype=object)
    simple_of = np.asarray(simplify_names(distinct), dtype=object)
    codes = names.cat.codes.to_numpy()[idx]
    steps = on["step"].to_numpy()
    after, before = steps[idx], steps[np.maximum(idx - 1, 0)]
    inside = (after == before) & np.isin(after, list(steady_steps))
    return pd.DataFrame(
        {"group": group_of[codes], "kernel": simple_of[codes], "gap": gap_lengths, "inside": inside}
    )


def _layer_pattern(parts: list[pd.DataFrame]) -> tuple[list[LayerPatternStat], str | None]:
    """Gap inside steady steps per functional group, largest first, with its worst kernel."""
    gaps = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if gaps.empty:
        return [], "no idle gaps between kernels"
    inside = gaps[gaps["inside"].to_numpy(dtype=bool)]
    if inside.empty:
        return [], "no steady-state steps isolated: gaps inside layers cannot be told from step boundaries"
    total = float(inside["gap"].sum())
    if total <= 0:
        return [], "no idle time inside steps"
    per_kernel = inside.groupby(["group", "kernel"])["gap"].sum().reset_index()
    stats = []
    for group, rows in inside.groupby("group"):
        mine = per_kernel[per_kernel["group"] == group].sort_values("gap", ascending=False)
        stats.append(
            LayerPatternStat(
                group=str(group),
                kernels=len(rows),
                gap_ns=int(rows["gap"].sum()),
                share_of_gap=float(rows["gap"].sum()) / total,
                top_kernel=str(mine["kernel"].iloc[0]),
            )
        )
    return sorted(stats, key=lambda x: -x.gap_ns), None


def _explain_gap(
    trace: Trace,
    frame: pd.DataFrame,
    iteration: IterationSet,
    device: int,
    g0: int,
    g1: int,
    config: HostConfig,
) -> GapCause:
    on = frame[frame["device"].to_numpy() == device]
    starts = on["start"].to_numpy(np.int64)
    position = int(np.searchsorted(starts, g1, side="left"))
    row = on.iloc[min(position, len(on) - 1)]
    step_id = int(row["step"])
    step = next((s for s in iteration.steps if s.index == step_id and s.device == device), None)
    gap = GapCause(
        rank=trace.label(),
        device=device,
        start_ns=g0,
        end_ns=g1,
        length_ns=g1 - g0,
        bucket_cause=_bucket_cause(g1 - g0, config),
        next_kernel=str(row["name"])[:160],
        copy_ns=_copy_overlap(trace, device, g0, g1),
        step=step_id if step_id >= 0 else None,
        phase=step.phase if step else None,
    )
    if trace.api.empty:
        gap.na_reason = "no CUDA/HIP API calls in the trace: what the host did cannot be told"
        return gap
    api = trace.api
    launch = api[
        (api["process"].to_numpy() == int(row["process"]))
        & (api["correlation"].to_numpy() == int(row["correlation"]))
    ]
    if launch.empty:
        gap.na_reason = "the kernel after the gap has no correlated launch call"
        return gap
    call = launch.iloc[0]
    thread, process = int(call["thread"]), int(call["process"])
    gap.launch_api = str(call["name"])
    gap.launch_into_gap_ns = int(call["start"]) - g0
    mine = api[(api["thread"].to_numpy() == thread) & (api["process"].to_numpy() == process)]
    active = mine[(mine["start"].to_numpy() <= g0) & (mine["end"].to_numpy() > g0)]
    gap.host_api = str(active.iloc[-1]["name"]) if not active.empty else None
    mid = (g0 + g1) // 2
    r = trace.ranges
    r = r[(r["thread"].to_numpy() == thread) & (r["source"].astype(str) != "gpu_user_annotation").to_numpy()]
    open_ = r[(r["start"].to_numpy() <= mid) & (r["end"].to_numpy() > mid)]
    if not open_.empty:
        innermost = open_.iloc[int(np.argmax(open_["start"].to_numpy()))]
        gap.host_range = normalise_range_name(str(innermost["name"]))
    return gap


def _copy_overlap(trace: Trace, device: int, g0: int, g1: int) -> int:
    """How much of [g0, g1) the device spends in copies/memsets (not kernels, so not 'busy')."""
    frames = [trace.memcpy, trace.memset]
    parts = [f[f["device"].to_numpy() == device] for f in frames]
    starts = np.concatenate([p["start"].to_numpy(np.int64) for p in parts])
    ends = np.concatenate([p["end"].to_numpy(np.int64) for p in parts])
    if starts.size == 0:
        return 0
    cs, ce = intervals.clip(starts, ends, (np.array([g0], dtype=np.int64), np.array([g1], dtype=np.int64)))
    return int((ce - cs).sum())


def _graph_coverage(traces: list[Trace]) -> tuple[float | None, int | None, int | None, str | None]:
    """(coverage, graph kernels, eager kernels, n/a reason) over all devices of all traces."""
    timelines = [t for trace in traces if not trace.kernels.empty for t in device_timelines(trace)]
    if not timelines:
        return None, None, None, "no kernels"
    reasons = sorted({t.graph_coverage_na_reason for t in timelines if t.graph_coverage_na_reason})
    if reasons:
        return None, None, None, "; ".join(reasons)
    graph = sum(t.graph_kernel_count or 0 for t in timelines)
    count = sum(t.kernel_count for t in timelines)
    return (graph / count if count else None), graph, count - graph, None


def collective_time(frame: pd.DataFrame) -> np.ndarray:
    """Per kernel of the frame: its duration when it is a collective, else 0."""
    return np.where(nccl_mask(frame["name"]), (frame["end"] - frame["start"]).to_numpy(np.int64), 0)
