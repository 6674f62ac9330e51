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

from typing import Literal

import numpy as np
import pandas as pd

from infersight.analyses.ranges import GPU_SOURCE
from infersight.host.advice import diff_findings, diff_handoff
from infersight.host.config import HostConfig
from infersight.host.drilldown import normalise_range_name
from infersight.host.iterations import isolate_iterations
from infersight.host.results import DiffReport, OpRow, OpStatus, Step, StepBreakdown
from infersight.model import Trace

NS_PER_US = 1_000.0
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


def step_breakdown(trace: Trace, config: HostConfig, label: str | None = None) -> StepBreakdown:
    """Per-step figures of one trace over its steady-state steps."""
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
    r_names, r_starts, r_self, r_proc = _range_arrays(trace)
    api = trace.api
    a_names = api["name"].astype(str).to_numpy()
    a_starts = api["start"].to_numpy(np.int64)
    a_dur = (api["end"] - api["start"]).to_numpy(np.int64)
    a_proc = api["process"].to_numpy(np.int64)
    op_parts: list[pd.DataFrame] = []
    api_parts: list[pd.DataFrame] = []
    for device in sorted({s.device for s in steps}):  # per device: its own steps and host processes
        dev_steps = [s for s in steps if s.device == device]
        h_start, h_end = _host_windows(frame, dev_steps)
        steady = np.array([not s.warmup for s in dev_steps])
        processes = np.unique(frame.loc[frame["device"].to_numpy() == device, "process"].to_numpy())
        windows = (h_start[steady], h_end[steady])
        op_parts.append(_in_windows(r_names, r_starts, r_self, _own(r_proc, processes), windows))
        api_parts.append(_in_windows(a_names, a_starts, a_dur, _own(a_proc, processes), windows))
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
        na_reason=None if not api.empty else "no CUDA API calls in the trace",
    )


def _range_arrays(trace: Trace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalised names, starts, self times and processes of the host ranges."""
    r = trace.ranges
    r = r[(r["source"].astype(str) != GPU_SOURCE).to_numpy()]
    starts, ends = r["start"].to_numpy(np.int64), r["end"].to_numpy(np.int64)
    threads = r["thread"].to_numpy(np.int64) * 1_000_003 + r["process"].to_numpy(np.int64)
    names = r["name"].astype("category")
    normal = np.array([normalise_range_name(str(c)) for c in names.cat.categories], dtype=object)
    codes = names.cat.codes.to_numpy()
    return (
        normal[np.maximum(codes, 0)] if len(codes) else np.empty(0, object),
        starts,
        self_times(starts, ends, threads),
        r["process"].to_numpy(np.int64),
    )


def _own(processes_of_rows: np.ndarray, device_processes: np.ndarray) -> np.ndarray:
    """Rows issued by the processes that drive a device (all rows when none carries one of them)."""
    mine = np.isin(processes_of_rows, device_processes)
    return mine if mine.any() else np.ones(processes_of_rows.size, dtype=bool)


def _in_windows(
    names: np.ndarray,
    starts: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    windows: tuple[np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """(name, value) of the selected events that start inside one of the (disjoint) windows."""
    w_start, w_end = windows
    order = np.argsort(w_start)
    ws, we = w_start[order], w_end[order]
    if ws.size == 0 or names.size == 0:
        return pd.DataFrame({"name": np.empty(0, dtype=object), "value": np.empty(0, dtype=np.int64)})
    idx = np.searchsorted(ws, starts, side="right") - 1
    inside = rows & (idx >= 0) & (starts < we[np.maximum(idx, 0)])
    return pd.DataFrame({"name": names[inside], "value": values[inside]})


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
    """Compare the per-step breakdowns of two traces of the same workload."""
    names = labels or ("baseline", "target")
    base = step_breakdown(baseline, config, names[0])
    tgt = step_breakdown(target, config, names[1])
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
    ops = _rows(base.ops, tgt.ops, "range", config, base.op_counts, tgt.op_counts)
    apis = _rows(base.apis, tgt.apis, "api", config, base.api_counts, tgt.api_counts)
    report = DiffReport(
        labels=names,
        baseline=base,
        target=tgt,
        summary=summary,
        ops=ops,
        apis=apis,
        root_cause=_root_cause(summary, ops, apis, base, tgt),
    )
    report.findings = diff_findings(report)
    report.handoff = diff_handoff(report)
    return report


def _root_cause(
    summary: list[OpRow], ops: list[OpRow], apis: list[OpRow], base: StepBreakdown, tgt: StepBreakdown
) -> str:
    if base.steps == 0 or tgt.steps == 0:
        return f"cannot compare: {base.na_reason or tgt.na_reason}"
    wall, _kernels, gpu = summary[0], summary[1], summary[2]
    changed = [r for r in ops + apis if r.status in ("REGRESSION", "NEW", "IMPROVED", "REMOVED")]
    if wall.status == "same" and not changed:
        return "no significant change per step"
    gpu_note = (
        "GPU kernel time per step is unchanged, so the change is on the host"
        if gpu.status == "same"
        else f"GPU kernel time per step changed {gpu.delta_pct or 0:+.1f}% (GPU work changed)"
    )
    top = changed[0] if changed else None
    if top is None:
        return f"step wall {wall.delta_pct or 0:+.1f}% with no single operation changing; {gpu_note}"
    share = f" ({top.delta / wall.delta * 100:.0f}% of the step wall delta)" if wall.delta else ""
    return (
        f"step wall {wall.delta:+.1f} µs ({wall.delta_pct or 0:+.1f}%); largest change: {top.kind} "
        f"{top.name!r} {top.status} {top.delta:+.1f} µs/step{share}; {gpu_note}"
    )
