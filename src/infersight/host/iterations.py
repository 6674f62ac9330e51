"""Iteration isolation (methodology §4): cut a trace's GPU timeline into inference steps.

Three methods, tried in order, and the result says which one was used and why:

1. **step-ranges** — NVTX / annotation ranges named like a step (``_forward_step``, ``step[EXTEND``,
   ``execute_model``, the phase markers of ``data/phase_markers.toml``). Ranges that several TP
   ranks report for the same step (starts within 100 µs) are merged, keeping the latest end; only
   outermost step ranges count. A step's kernels are those whose launch call starts in the range
   (so CUDA-graph kernels follow their ``cudaGraphLaunch``).
2. **allreduce** — under tensor parallelism each step runs a fixed number of allreduce kernels
   (layers × allreduces per layer). A gap > 1 ms between consecutive allreduce kernels starts a
   step; the modal group size is the per-step count; the cut goes into the longest GPU idle gap
   between the two groups.
3. **density** — a GPU idle gap longer than 1 ms ends a step (the host does end-of-step work:
   sampling, scheduling, detokenisation).

Steps are then classified into context / generation (:mod:`infersight.host.step_phases`) and
leading steps far slower than their phase's median are marked warm-up.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.launches import kernel_launch_info
from infersight.analyses.ranges import GPU_SOURCE, SUMMARY_SOURCES
from infersight.host.config import HostConfig
from infersight.host.results import IterationSet, Step
from infersight.host.step_phases import classify_steps
from infersight.model import Trace


def kernel_frame(trace: Trace) -> pd.DataFrame:
    """Kernels sorted by (device, start) with their launch call's start/thread."""
    k = trace.kernels
    launch = kernel_launch_info(trace)
    frame = pd.DataFrame(
        {
            "device": k["device"].to_numpy(np.int64),
            "start": k["start"].to_numpy(np.int64),
            "end": k["end"].to_numpy(np.int64),
            "name": k["name"].array,
            "process": k["process"].to_numpy(np.int64),
            "correlation": k["correlation"].to_numpy(np.int64),
            "launch_start": launch["launch_start"].to_numpy(np.int64),
            "launch_thread": launch["launch_thread"].to_numpy(np.int64),
        }
    )
    frame = frame.sort_values(["device", "start"], kind="stable").reset_index(drop=True)
    frame["step"] = np.int64(-1)
    return frame


def isolate_iterations(
    trace: Trace, config: HostConfig, kernels: pd.DataFrame | None = None
) -> tuple[IterationSet, pd.DataFrame]:
    """The steps of one trace and its kernel frame with a ``step`` column filled in."""
    cfg = config.section("iterations")
    frame = kernel_frame(trace) if kernels is None else kernels
    if frame.empty:
        return IterationSet(trace=trace.label(), method="none", reason="the trace has no GPU kernels"), frame
    attempts: list[str] = []
    method: Literal["step-ranges", "allreduce", "density"]
    by_ranges = _by_step_ranges(trace, frame, cfg, config)
    if isinstance(by_ranges, str):
        attempts.append(by_ranges)
        by_ar = _by_allreduce(frame, cfg)
        if isinstance(by_ar, str):
            attempts.append(by_ar)
            by_density = _by_density(frame, cfg)
            if isinstance(by_density, str):
                attempts.append(by_density)
                return IterationSet(trace=trace.label(), method="none", reason="; ".join(attempts)), frame
            labels: dict[int, str] = {}
            method, reason, step_ids, dedup = "density", by_density[0], by_density[1], 0
        else:
            labels = {}
            method, reason, step_ids, dedup = "allreduce", by_ar[0], by_ar[1], 0
    else:
        method, reason, step_ids, labels, dedup = "step-ranges", *by_ranges
    if attempts:
        reason = f"{reason} (not used: {'; '.join(attempts)})"
    frame["step"] = step_ids
    steps = _steps(frame, labels)
    phase_method, phase_reason = classify_steps(trace, frame, steps, config)
    dropped = _mark_warmup(steps, float(cfg["warmup_factor"]))
    iteration_set = IterationSet(
        trace=trace.label(),
        method=method,
        reason=reason,
        phase_method=phase_method,
        phase_reason=phase_reason,
        steps=steps,
        deduplicated_ranges=dedup,
        warmup_dropped=dropped,
    )
    return iteration_set, frame


# ---------------------------------------------------------------- method 1: step ranges


def step_ranges(trace: Trace, step_pattern: str, config: HostConfig) -> pd.DataFrame:
    """Ranges named like a step or a phase marker (start, end, name, source, process)."""
    r = trace.ranges
    r = r[r["source"].isin(SUMMARY_SOURCES).to_numpy()]
    if r.empty:
        return r
    pattern = re.compile(step_pattern)
    names = r["name"].astype("category")
    cats = names.cat.categories
    is_step = np.array(
        [bool(pattern.search(str(n))) or config.classify(str(n)) is not None for n in cats], dtype=bool
    )
    codes = names.cat.codes.to_numpy()
    keep = np.where(codes >= 0, is_step[np.maximum(codes, 0)], False)
    return r[keep]


def dedup_ranges(
    starts: np.ndarray, ends: np.ndarray, window_ns: int, owners: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge ranges of different owners (rank threads) whose starts lie within ``window_ns``.

    Several TP ranks emit the same step range a few µs apart; counting each would multiply the
    steps. A group keeps its first start and the latest end (methodology §4: take the max end). Two
    ranges of the same owner are never merged: one thread's consecutive steps are distinct.
    Returns the merged starts/ends and how many ranges were merged away.
    """
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    who = np.zeros(s.size, dtype=np.int64) if owners is None else owners[order]
    keep_s: list[int] = []
    keep_e: list[int] = []
    members: set[int] = set()
    for start, end, owner in zip(s.tolist(), e.tolist(), who.tolist(), strict=True):  # per step range
        if keep_s and start - keep_s[-1] <= window_ns and owner not in members:
            keep_e[-1] = max(keep_e[-1], end)
            members.add(owner)
        else:
            keep_s.append(start)
            keep_e.append(end)
            members = {owner}
    return np.array(keep_s, dtype=np.int64), np.array(keep_e, dtype=np.int64), len(s) - len(keep_s)


def _outermost(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of ranges not contained in an earlier-starting range (sorted by start)."""
    running = np.maximum.accumulate(ends)
    inner = np.zeros(starts.size, dtype=bool)
    inner[1:] = ends[1:] <= running[:-1]
    return ~inner


def _by_step_ranges(
    trace: Trace, frame: pd.DataFrame, cfg: dict[str, Any], config: HostConfig
) -> tuple[str, np.ndarray, dict[int, str], int] | str:
    ranges = step_ranges(trace, str(cfg["step_pattern"]), config)
    if ranges.empty:
        return "no NVTX/annotation step range (step_pattern or a phase marker) in the trace"
    host = (ranges["source"].astype(str) != GPU_SOURCE).to_numpy()
    if host.any() and (frame["launch_start"].to_numpy() >= 0).any():
        ranges = ranges[host]  # GPU copies of the same annotations would count every step twice
    else:
        ranges = ranges[~host] if (~host).any() else ranges
    window = int(cfg["dedup_window_ns"])
    rs = ranges["start"].to_numpy(np.int64)
    order = np.argsort(rs, kind="stable")
    ranges = ranges.iloc[order]
    owners = ranges["process"].to_numpy(np.int64) * 1_000_003 + ranges["thread"].to_numpy(np.int64)
    s, e, merged = dedup_ranges(
        ranges["start"].to_numpy(np.int64), ranges["end"].to_numpy(np.int64), window, owners
    )
    first_names = _first_names(ranges, s)
    outer = _outermost(s, e)
    s, e, first_names = s[outer], e[outer], [n for n, o in zip(first_names, outer, strict=True) if o]
    is_gpu = bool((ranges["source"].astype(str) == GPU_SOURCE).all())
    ls = frame["launch_start"].to_numpy(np.int64)
    by_execution = is_gpu or bool((ls < 0).all())
    key = frame["start"].to_numpy(np.int64) if by_execution else ls
    idx = np.searchsorted(s, key, side="right") - 1
    inside = (idx >= 0) & (key < e[np.maximum(idx, 0)]) & (key >= 0)
    step_ids = np.where(inside, idx, -1).astype(np.int64)
    used = np.unique(step_ids[step_ids >= 0])
    if used.size == 0:
        return f"{len(s)} step range(s) found but no kernel was launched inside one"
    renumber = np.full(len(s), -1, dtype=np.int64)
    renumber[used] = np.arange(used.size)
    step_ids = np.where(step_ids >= 0, renumber[np.maximum(step_ids, 0)], -1)
    labels = {int(renumber[i]): first_names[i] for i in used}
    names = sorted(set(labels.values()))
    shown = ", ".join(repr(n) for n in names[:3]) + (" ..." if len(names) > 3 else "")
    outside = int((step_ids < 0).sum())
    reason = (
        f"{used.size} NVTX/annotation step ranges ({shown}); kernels assigned by "
        f"{'kernel start' if by_execution else 'launch time'}"
        f", {outside} kernels outside every step"
    )
    if merged:
        reason += (
            f"; {merged} duplicate ranges from other TP ranks (starts within {window / 1e3:g} µs) merged"
        )
    return reason, step_ids, labels, merged


def _first_names(ranges: pd.DataFrame, merged_starts: np.ndarray) -> list[str]:
    """Name of the first range of each merged group (ranges sorted by start)."""
    rs = ranges["start"].to_numpy(np.int64)
    names = ranges["name"].astype(str).to_numpy()
    pos = np.searchsorted(rs, merged_starts, side="left")
    return [str(names[p]) for p in pos]


# ---------------------------------------------------------------- method 2: allreduce grouping


def _by_allreduce(frame: pd.DataFrame, cfg: dict[str, Any]) -> tuple[str, np.ndarray] | str:
    pattern = re.compile(str(cfg["allreduce_pattern"]))
    names = frame["name"].astype("category")
    is_ar_cat = np.array(
        [bool(pattern.search(str(n))) and "embedding" not in str(n) for n in names.cat.categories], dtype=bool
    )
    is_ar = is_ar_cat[names.cat.codes.to_numpy()]
    if not is_ar.any():
        return "no allreduce kernels (single GPU or no tensor parallelism)"
    gap_ns = int(cfg["allreduce_iteration_gap_ns"])
    phase_gap = int(cfg["allreduce_phase_gap_ns"])
    step_ids = np.full(len(frame), -1, dtype=np.int64)
    base = 0
    details: list[str] = []
    for device in np.unique(frame["device"].to_numpy()):  # per device (few)
        on = np.flatnonzero(frame["device"].to_numpy() == device)
        ar = on[is_ar[on]]
        if ar.size < 2:
            continue
        a_s, a_e = frame["start"].to_numpy(np.int64)[ar], frame["end"].to_numpy(np.int64)[ar]
        between = a_s[1:] - np.maximum.accumulate(a_e)[:-1]
        cuts_after = np.flatnonzero(between > gap_ns)
        if cuts_after.size == 0:
            continue
        sizes = np.diff(np.concatenate([[-1], cuts_after, [ar.size - 1]]))
        modal = int(np.bincount(sizes).argmax())
        ks, ke = frame["start"].to_numpy(np.int64)[on], frame["end"].to_numpy(np.int64)[on]
        us, ue = intervals.union(ks, ke)
        cut_points = [_longest_gap_start(ue, us, int(a_e[c]), int(a_s[c + 1])) for c in cuts_after]
        ids = np.searchsorted(np.array(cut_points, dtype=np.int64), ks, side="right")
        step_ids[on] = ids + base
        base += cuts_after.size + 1
        odd = int((sizes != modal).sum())
        phases = int((between > phase_gap).sum()) + 1
        details.append(
            f"device {device}: {ar.size} allreduce kernels in {sizes.size} groups "
            f"(gap > {gap_ns / 1e6:g} ms), "
            f"modal {modal} per step"
            + (f", {odd} groups of another size" if odd else "")
            + (f", {phases} phases (gaps > {phase_gap / 1e6:g} ms)" if phases > 1 else "")
        )
    if base < 2:
        return "allreduce kernels never pause > 1 ms: one group, no step boundary"
    return "allreduce grouping: " + "; ".join(details), step_ids


def _longest_gap_start(union_ends: np.ndarray, union_starts: np.ndarray, lo: int, hi: int) -> int:
    """The time to cut between two allreduce groups: the start of the longest idle gap in [lo, hi]."""
    g_start, g_end = union_ends[:-1], union_starts[1:]
    sel = np.flatnonzero((g_start >= lo) & (g_end <= hi))
    if sel.size == 0:
        return hi
    best = sel[np.argmax((g_end - g_start)[sel])]
    return int(g_end[best]) - 1  # kernels starting at the gap end belong to the next step


# ---------------------------------------------------------------- method 3: kernel density


def _by_density(frame: pd.DataFrame, cfg: dict[str, Any]) -> tuple[str, np.ndarray] | str:
    gap_ns = int(cfg["density_gap_ns"])
    min_kernels = int(cfg["min_kernels_per_iteration"])
    step_ids = np.full(len(frame), -1, dtype=np.int64)
    base = 0
    for device in np.unique(frame["device"].to_numpy()):  # per device (few)
        on = np.flatnonzero(frame["device"].to_numpy() == device)
        s, e = frame["start"].to_numpy(np.int64)[on], frame["end"].to_numpy(np.int64)[on]
        running = np.maximum.accumulate(e)
        new = np.ones(s.size, dtype=bool)
        new[1:] = s[1:] - running[:-1] > gap_ns
        ids = np.cumsum(new) - 1
        counts = np.bincount(ids)
        big = counts >= min_kernels
        remap = np.where(big, np.cumsum(big) - 1 + base, -1)
        step_ids[on] = remap[ids]
        base += int(big.sum())
    if base < 2:
        return (
            f"kernel density: fewer than 2 bursts of >= {min_kernels} kernels separated by GPU idle "
            f"> {gap_ns / 1e6:g} ms"
        )
    return (
        f"kernel density: {base} bursts of >= {min_kernels} kernels split by GPU idle > {gap_ns / 1e6:g} ms",
        (step_ids),
    )


# ---------------------------------------------------------------- steps


def _steps(frame: pd.DataFrame, labels: dict[int, str]) -> list[Step]:
    """One Step per (step id, device) with the span of its kernels."""
    sel = frame[frame["step"].to_numpy() >= 0]
    grouped = sel.groupby(["step", "device"], sort=True).agg(
        start=("start", "min"), end=("end", "max"), kernels=("start", "size")
    )
    return [
        Step(
            index=int(step),
            device=int(device),
            start_ns=int(s),
            end_ns=int(e),
            kernels=int(n),
            label=labels.get(int(step), ""),
        )
        for (step, device), s, e, n in zip(
            grouped.index, grouped["start"], grouped["end"], grouped["kernels"], strict=True
        )
    ]


def _mark_warmup(steps: list[Step], factor: float) -> int:
    """Mark leading steps of each phase (per device) slower than ``factor`` × the phase median."""
    dropped = 0
    groups: dict[tuple[str, int], list[Step]] = {}
    for step in steps:
        groups.setdefault((step.phase, step.device), []).append(step)
    for members in groups.values():
        if len(members) < 3:
            continue
        ordered = sorted(members, key=lambda m: m.start_ns)
        walls = np.array([m.end_ns - m.start_ns for m in ordered], dtype=np.float64)
        median = float(np.median(walls))
        for member, wall in zip(ordered, walls, strict=True):
            if wall <= factor * median:
                break
            member.warmup = True
            dropped += 1
    return dropped
