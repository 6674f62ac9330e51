"""Root cause with one trace (per-step breakdown) or two (baseline vs target) — methodology §4.

Per steady-state step: wall time, kernels launched, GPU kernel time, CUDA API time/count, and per
operation (NVTX / annotation / PyTorch-op range name) its *self* time — the time no nested range
covers. Self time is what makes an injected delay show up in exactly one operation: the ranges
enclosing it grow too, but only in inclusive time.

A step's host window runs from the first launch of its kernels to the first launch of the next
step (the host prepares step i+1 while the GPU runs step i); ranges and API calls are charged to
the step whose host window holds their start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from infersight.analyses.attribution import BUCKETS, device_activity, kernel_labels
from infersight.analyses.ranges import GPU_SOURCE
from infersight.host import diff_explain
from infersight.host.advice import diff_findings, diff_handoff
from infersight.host.config import HostConfig
from infersight.host.drilldown import normalise_range_name
from infersight.host.iterations import isolate_iterations
from infersight.host.results import (
    DiffReport,
    EnvironmentChange,
    OpRow,
    OpStatus,
    RunEnvironment,
    Step,
    StepBreakdown,
    WallDecomposition,
    WorkloadSimilarity,
)
from infersight.model import Trace

NS_PER_US = 1_000.0
Spans = tuple[np.ndarray, np.ndarray]
RowKind = Literal["range", "api", "total"]


def self_times(starts: np.ndarray, ends: np.ndarray, threads: np.ndarray) -> np.ndarray:
    """Per range: duration minus the durations of its direct children on the same thread.

    Ranges of one thread nest (push/pop); a range is a child of the innermost open range that
    contains it. One pass per thread with a stack; partially overlapping ranges are clipped.
    """
    out = (ends - starts).astype(np.int64)
    order = np.lexsort((-ends, starts, threads))
    stack: list[int] = []
    last_thread = None
    for i in order.tolist():  # per range: a stack walk, O(n)
        if threads[i] != last_thread:
            stack.clear()
            last_thread = threads[i]
        while stack and ends[stack[-1]] <= starts[i]:
            stack.pop()
        if stack:
            parent = stack[-1]
            out[parent] -= min(ends[i], ends[parent]) - starts[i]
        stack.append(i)
    return np.maximum(out, 0)


def _host_windows(frame: pd.DataFrame, steps: list[Step]) -> tuple[np.ndarray, np.ndarray]:
    """Host window [first launch of step, first launch of the next step) per step, in step order."""
    launches = frame[(frame["step"].to_numpy() >= 0) & (frame["launch_start"].to_numpy() >= 0)]
    first = launches.groupby("step")["launch_start"].min()
    starts = np.array([int(first.get(s.index, s.start_ns)) for s in steps], dtype=np.int64)
    ends = np.append(starts[1:], steps[-1].end_ns if steps else 0).astype(np.int64)
    ends = np.maximum(ends, starts)
    return starts, ends


def step_breakdown(
    trace: Trace, config: HostConfig, label: str | None = None, labels: pd.DataFrame | None = None
) -> StepBreakdown:
    """Per-step figures of one trace over its steady-state steps.

    ``labels``: the trace's kernel labels (category / simplified name) when the caller has them.
    """
    iteration, frame = isolate_iterations(trace, config)
    steps = sorted(iteration.steps, key=lambda s: (s.start_ns, s.device))
    name = label or trace.label()
    if not steps:
        return StepBreakdown(
            trace=trace.source,
            label=name,
            iterations=iteration,
            steps=0,
            avg_step_ns=None,
            kernels_per_step=None,
            gpu_kernel_ns_per_step=None,
            api_ns_per_step=None,
            api_calls_per_step=None,
            na_reason=f"no steps isolated: {iteration.reason}",
        )
    n = sum(1 for s in steps if not s.warmup)
    steady_ids = [s.index for s in steps if not s.warmup]
    in_steps = np.isin(frame["step"].to_numpy(), steady_ids)
    dur = (frame["end"] - frame["start"]).to_numpy(np.int64)
    ranges = _host_ranges(trace, config)
    api = trace.api
    a_names = api["name"].astype(str).to_numpy()
    a_starts = api["start"].to_numpy(np.int64)
    a_dur = (api["end"] - api["start"]).to_numpy(np.int64)
    a_proc = api["process"].to_numpy(np.int64)
    k_labels = labels if labels is not None else kernel_labels(trace)
    op_parts: list[pd.DataFrame] = []
    api_parts: list[pd.DataFrame] = []
    bucket_parts: list[pd.DataFrame] = []
    api_bucket_parts: list[pd.DataFrame] = []
    a_ends = api["end"].to_numpy(np.int64)
    for device in sorted({s.device for s in steps}):  # per device: its own steps and host processes
        dev_steps = [s for s in steps if s.device == device]
        h_start, h_end = _host_windows(frame, dev_steps)
        steady = np.array([not s.warmup for s in dev_steps])
        processes = np.unique(frame.loc[frame["device"].to_numpy() == device, "process"].to_numpy())
        windows = (h_start[steady], h_end[steady])
        mine = _in_windows_mask(ranges.starts, _own(ranges.processes, processes), windows) & ranges.is_op
        op_parts.append(pd.DataFrame({"name": ranges.names[mine], "value": ranges.self_ns[mine]}))
        api_mine = _in_windows_mask(a_starts, _own(a_proc, processes), windows)
        api_parts.append(pd.DataFrame({"name": a_names[api_mine], "value": a_dur[api_mine]}))
        spans = diff_explain.bucket_spans(device_activity(trace, device, k_labels))
        bucket_parts.append(_op_buckets(spans, ranges, mine))
        inside = diff_explain.pieces_in_buckets(spans, a_starts[api_mine], a_ends[api_mine])
        api_bucket_parts.append(pd.DataFrame({"name": a_names[api_mine], **inside}))
    ops, op_counts = _per_step(op_parts, n)
    apis, api_counts = _per_step(api_parts, n)
    return StepBreakdown(
        trace=trace.source,
        label=name,
        iterations=iteration,
        steps=n,
        avg_step_ns=float(np.mean([s.end_ns - s.start_ns for s in steps if not s.warmup])),
        kernels_per_step=float(in_steps.sum()) / n,
        gpu_kernel_ns_per_step=float(dur[in_steps].sum()) / n,
        api_ns_per_step=sum(apis.values()) * NS_PER_US if not api.empty else None,
        api_calls_per_step=sum(api_counts.values()) if not api.empty else None,
        ops=ops,
        op_counts=op_counts,
        apis=apis,
        api_counts=api_counts,
        op_buckets=_op_buckets_per_step(bucket_parts, n),
        api_buckets=_op_buckets_per_step(api_bucket_parts, n),
        step_markers_excluded=sorted(set(ranges.names[~ranges.is_op].tolist())),
        na_reason=None if not api.empty else "no CUDA API calls in the trace",
    )


@dataclass(frozen=True)
class HostRanges:
    """The trace's host ranges as arrays: normalised name, start, self time, process, self pieces."""

    names: np.ndarray
    starts: np.ndarray
    self_ns: np.ndarray
    processes: np.ndarray
    is_op: np.ndarray  # False for step markers (ProfilerStep#N, execute_model ...): steps, not ops
    pieces: tuple[np.ndarray, np.ndarray, np.ndarray]  # (range index, start, end) of the self time


def _host_ranges(trace: Trace, config: HostConfig) -> HostRanges:
    """Host ranges with self times; step markers stay in for nesting but are flagged as not ops."""
    r = trace.ranges
    r = r[(r["source"].astype(str) != GPU_SOURCE).to_numpy()]
    starts, ends = r["start"].to_numpy(np.int64), r["end"].to_numpy(np.int64)
    threads = r["thread"].to_numpy(np.int64) * 1_000_003 + r["process"].to_numpy(np.int64)
    names = r["name"].astype("category")
    categories = [str(c) for c in names.cat.categories] or [""]  # all-null names: one empty category
    normal = np.array([normalise_range_name(c) for c in categories], dtype=object)
    step = re.compile(str(config.section("iterations")["step_pattern"]))
    marker = np.array(
        [bool(step.search(c)) or config.classify(c) is not None for c in categories], dtype=bool
    )
    codes = np.maximum(names.cat.codes.to_numpy(), 0)
    has = len(codes) > 0
    return HostRanges(
        names=normal[codes] if has else np.empty(0, object),
        starts=starts,
        self_ns=self_times(starts, ends, threads),
        processes=r["process"].to_numpy(np.int64),
        is_op=~marker[codes] if has else np.empty(0, bool),
        pieces=diff_explain.self_pieces(starts, ends, threads),
    )


def _op_buckets(spans: dict[str, Spans], ranges: HostRanges, selected: np.ndarray) -> pd.DataFrame:
    """Per self-time piece of the selected ranges: its name and ns in each bucket of the device."""
    index, ps, pe = ranges.pieces
    keep = selected[index] if index.size else np.zeros(0, dtype=bool)
    inside = diff_explain.pieces_in_buckets(spans, ps[keep], pe[keep])
    return pd.DataFrame({"name": ranges.names[index[keep]], **inside})


def _op_buckets_per_step(parts: list[pd.DataFrame], n: int) -> dict[str, dict[str, float]]:
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty or n == 0:
        return {}
    sums = frame.groupby("name")[list(BUCKETS)].sum() / NS_PER_US / n
    return {str(name): {b: float(row[b]) for b in BUCKETS} for name, row in sums.iterrows()}


def _own(processes_of_rows: np.ndarray, device_processes: np.ndarray) -> np.ndarray:
    """Rows issued by the processes that drive a device (all rows when none carries one of them)."""
    mine = np.isin(processes_of_rows, device_processes)
    return mine if mine.any() else np.ones(processes_of_rows.size, dtype=bool)


def _in_windows_mask(
    starts: np.ndarray, rows: np.ndarray, windows: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Mask of the selected events that start inside one of the (disjoint) windows."""
    w_start, w_end = windows
    order = np.argsort(w_start)
    ws, we = w_start[order], w_end[order]
    if ws.size == 0 or starts.size == 0:
        return np.zeros(starts.size, dtype=bool)
    idx = np.searchsorted(ws, starts, side="right") - 1
    return rows & (idx >= 0) & (starts < we[np.maximum(idx, 0)])


def _per_step(parts: list[pd.DataFrame], n: int) -> tuple[dict[str, float], dict[str, float]]:
    """µs/step and count/step per name over all devices' windows."""
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if frame.empty or n == 0:
        return {}, {}
    grouped = frame.groupby("name")["value"].agg(["sum", "size"])
    per_step = (grouped["sum"] / NS_PER_US / n).to_dict()
    counts = (grouped["size"] / n).to_dict()
    return {str(k): float(v) for k, v in per_step.items()}, {str(k): float(v) for k, v in counts.items()}


def _status(base: float | None, target: float | None, config: HostConfig) -> OpStatus:
    cfg = config.section("diff")
    if not base and target:
        return "NEW"
    if base and not target:
        return "REMOVED"
    b, t = base or 0.0, target or 0.0
    delta = t - b
    limit = max(float(cfg["min_delta_us"]), float(cfg["min_delta_ratio"]) * abs(b))
    if delta > limit:
        return "REGRESSION"
    if delta < -limit:
        return "IMPROVED"
    return "same"


def _row(
    name: str,
    kind: RowKind,
    base: float | None,
    target: float | None,
    config: HostConfig,
    unit: str,
    counts: tuple[float | None, float | None] = (None, None),
) -> OpRow:
    delta = (target or 0.0) - (base or 0.0)
    return OpRow(
        name=name,
        kind=kind,
        baseline=base,
        target=target,
        delta=delta,
        delta_pct=delta / base * 100.0 if base else None,
        status=_status(base, target, config),
        unit=unit,
        baseline_count=counts[0],
        target_count=counts[1],
    )


def _rows(
    base: dict[str, float],
    target: dict[str, float],
    kind: RowKind,
    config: HostConfig,
    base_counts: dict[str, float],
    target_counts: dict[str, float],
) -> list[OpRow]:
    rows = [
        _row(
            name,
            kind,
            base.get(name),
            target.get(name),
            config,
            "µs/step",
            (base_counts.get(name), target_counts.get(name)),
        )
        for name in sorted(set(base) | set(target))
    ]
    return sorted(rows, key=lambda r: -abs(r.delta))


def _us(value: float | None) -> float | None:
    return None if value is None else value / NS_PER_US


def diff_traces(
    baseline: Trace, target: Trace, config: HostConfig, labels: tuple[str, str] | None = None
) -> DiffReport:
    """Compare two traces: environment, wall decomposition and similarity first, then per-op deltas."""
    names = labels or ("baseline", "target")
    cfg = config.section("diff")
    k_labels = (kernel_labels(baseline), kernel_labels(target))
    base = step_breakdown(baseline, config, names[0], k_labels[0])
    tgt = step_breakdown(target, config, names[1], k_labels[1])
    summary = [
        _row("step wall", "total", _us(base.avg_step_ns), _us(tgt.avg_step_ns), config, "µs"),
        _row("kernels", "total", base.kernels_per_step, tgt.kernels_per_step, config, "/step"),
        _row(
            "GPU kernel time",
            "total",
            _us(base.gpu_kernel_ns_per_step),
            _us(tgt.gpu_kernel_ns_per_step),
            config,
            "µs/step",
        ),
        _row(
            "CUDA API time", "total", _us(base.api_ns_per_step), _us(tgt.api_ns_per_step), config, "µs/step"
        ),
        _row("CUDA API calls", "total", base.api_calls_per_step, tgt.api_calls_per_step, config, "/step"),
    ]
    ops = [
        _with_bucket(r, base, tgt)
        for r in _rows(base.ops, tgt.ops, "range", config, base.op_counts, tgt.op_counts)
    ]
    apis = [
        _with_bucket(r, base, tgt)
        for r in _rows(base.apis, tgt.apis, "api", config, base.api_counts, tgt.api_counts)
    ]
    environment = (
        diff_explain.run_environment(baseline, base.iterations, cfg, k_labels[0]),
        diff_explain.run_environment(target, tgt.iterations, cfg, k_labels[1]),
    )
    changes = diff_explain.environment_changes(*environment)
    decomposition = diff_explain.wall_decomposition(
        diff_explain.step_buckets(baseline, base.iterations, k_labels[0]),
        diff_explain.step_buckets(target, tgt.iterations, k_labels[1]),
    )
    similarity = diff_explain.workload_similarity(baseline, target, cfg, k_labels)
    report = DiffReport(
        labels=names,
        baseline=base,
        target=tgt,
        summary=summary,
        ops=ops,
        apis=apis,
        root_cause="",
        environment=environment,
        environment_changes=changes,
        decomposition=decomposition,
        similarity=similarity,
        warnings=_warnings(environment, changes, decomposition, similarity),
    )
    report.root_cause = _root_cause(report)
    report.findings = diff_findings(report)
    report.handoff = diff_handoff(report)
    return report


def _with_bucket(row: OpRow, base: StepBreakdown, tgt: StepBreakdown) -> OpRow:
    """The op row with its delta split by the GPU bucket it overlapped, and the leading bucket."""
    source = (base.op_buckets, tgt.op_buckets) if row.kind == "range" else (base.api_buckets, tgt.api_buckets)
    a, b = source[0].get(row.name, {}), source[1].get(row.name, {})
    if not a and not b:
        return row
    delta = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in BUCKETS}
    return row.model_copy(update={"bucket_delta": delta, "bucket": diff_explain.op_bucket(delta, row.delta)})


def _warnings(
    environment: tuple[RunEnvironment, RunEnvironment],
    changes: list[EnvironmentChange],
    decomposition: WallDecomposition,
    similarity: WorkloadSimilarity,
) -> list[str]:
    """What the reader must know before the per-op table (methodology §4, diff)."""
    out = []
    if any(c.hardware for c in changes):
        gpu = next(r for r in decomposition.buckets if r.name == "gpu")
        out.append(diff_explain.hardware_warning(*environment, gpu.share_of_wall_delta))
    if not similarity.comparable:
        out.append(
            f"different workloads: only {similarity.shared_kernel_time:.0%} of kernel time runs kernels "
            f"the other trace also runs (threshold {similarity.threshold:.0%}); per-operation deltas "
            "are not comparable"
        )
    if decomposition.note:
        out.append(decomposition.note)
    return out


def comparable_ops(report: DiffReport) -> bool:
    """Whether per-operation deltas may be read as blame (same workload by kernel time)."""
    return report.similarity is None or report.similarity.comparable


def _root_cause(report: DiffReport) -> str:
    """One line: hardware / workload caveats, the bucket split of the wall delta, then the top op."""
    base, tgt, summary = report.baseline, report.target, report.summary
    if base.steps == 0 or tgt.steps == 0:
        return f"cannot compare: {base.na_reason or tgt.na_reason}"
    wall, gpu = summary[0], summary[2]
    changed = [
        r for r in report.ops + report.apis if r.status in ("REGRESSION", "NEW", "IMPROVED", "REMOVED")
    ]
    if wall.status == "same" and not changed:
        return "no significant change per step"
    parts = []
    if any(c.hardware for c in report.environment_changes):
        parts.append("the runs differ in hardware (see the environment)")
    if not comparable_ops(report):
        parts.append("the runs are different workloads")
    parts.append(f"step wall {wall.delta:+.1f} µs ({wall.delta_pct or 0:+.1f}%)")
    split = _split_text(report.decomposition)
    if split:
        parts.append(split)
    gpu_note = (
        "GPU kernel time per step is unchanged, so the change is on the host"
        if gpu.status == "same"
        else f"GPU kernel time per step changed {gpu.delta_pct or 0:+.1f}% (GPU work changed)"
    )
    top = changed[0] if changed else None
    if top is None:
        parts.append(f"no single operation changing; {gpu_note}")
        return "; ".join(parts)
    if comparable_ops(report):
        share = f" ({top.delta / wall.delta * 100:.0f}% of the step wall delta)" if wall.delta else ""
        where = f", in the {top.bucket} bucket" if top.bucket else ""
        if top.bucket is not None and top.bucket != "host":
            where += " (the GPU was busy meanwhile: the host waited on the device, not a host cause)"
        parts.append(
            f"largest change: {top.kind} {top.name!r} {top.status} {top.delta:+.1f} µs/step{share}{where}"
        )
    parts.append(gpu_note)
    return "; ".join(parts)


def _split_text(decomposition: WallDecomposition | None) -> str:
    """'gpu +49.8 ms (87%), host +6.1 ms (11%) …': the buckets that carry the wall delta."""
    if decomposition is None or not decomposition.wall.delta:
        return ""
    rows = sorted(decomposition.buckets, key=lambda r: -abs(r.delta))
    shown = [f"{r.name} {r.delta:+.1f} µs ({(r.share_of_wall_delta or 0):.0%})" for r in rows if r.delta][:3]
    return "of which " + ", ".join(shown)
