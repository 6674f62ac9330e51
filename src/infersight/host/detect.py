"""``infersight host``: M1-M5 per aggregate / context / generation, verdicts, drill-down, advice.

The aggregate window of a device is its kernel span (like ``infersight analyze``); a phase's
window is the union of its steady-state steps' GPU spans, so warm-up steps never count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from infersight.analyses import intervals
from infersight.analyses.window import kernel_span
from infersight.errors import InputError
from infersight.host.advice import host_findings, host_handoff
from infersight.host.attribution import activity_window, add_fills
from infersight.host.config import HostConfig, compile_regex
from infersight.host.drilldown import collective_time, drill_down
from infersight.host.iterations import isolate_iterations
from infersight.host.metrics import (
    DeviceIntervals,
    IntervalSet,
    add_times,
    device_intervals,
    host_prep_ranges,
    metric_values,
    scope_times,
)
from infersight.host.results import (
    GapCause,
    HostReport,
    IterationSet,
    Scope,
    ScopeTimes,
    ScopeVerdict,
    StragglerStat,
)
from infersight.host.verdict import judge_scope, overall_verdict
from infersight.model import Trace

PHASE_SCOPES: tuple[Scope, ...] = ("context", "generation")
MIN_KERNELS_FOR_VERDICT = 2  # one kernel has no inter-kernel gap: any ratio would be noise
STRAGGLER_SPREAD = 0.10  # per-step wall spread across ranks above which a straggler is named


def analyze_host(traces: list[Trace], config: HostConfig, host_prep_pattern: str | None = None) -> HostReport:
    """The host-overhead report of one or more traces (ranks)."""
    usable = [t for t in traces if not t.kernels.empty]
    if not usable:
        raise InputError(
            ", ".join(t.source for t in traces),
            "no GPU kernels in the trace: host overhead needs the GPU timeline (was CUDA activity traced?)",
        )
    pattern_text = host_prep_pattern or str(config.section("host_prep")["pattern"])
    pattern = compile_regex(pattern_text, "--host-prep-range")
    notes = [f"{t.source}: no GPU kernels, skipped" for t in traces if t.kernels.empty]
    notes += _clock_notes(usable)
    isolated = [isolate_iterations(t, config) for t in usable]
    iterations = [it for it, _ in isolated]
    frames = [frame for _, frame in isolated]
    prep_frames = [host_prep_ranges(t, pattern) for t in usable]
    prep_na = _prep_na_reason(usable, prep_frames, pattern_text)
    migration = compile_regex(
        str(config.section("attribution")["migration_kind"]), "attribution.migration_kind"
    )
    devices = [
        device_intervals(t, int(d), None if prep_na else prep, migration)
        for t, prep in zip(usable, prep_frames, strict=True)
        for d in np.unique(t.kernels["device"].to_numpy())
    ]
    scopes = [_aggregate_scope(devices, config, prep_na)]
    for phase in PHASE_SCOPES:
        scopes.append(_phase_scope(phase, devices, usable, iterations, config, prep_na))
    verdict, reason = overall_verdict(scopes)
    drill = drill_down(usable, frames, iterations, config)
    _single_stall_caveat(scopes[0], drill.top_gaps[:1], config)
    stragglers, straggler_na = _stragglers(usable, frames, iterations)
    report = HostReport(
        traces=[t.source for t in usable],
        host_prep_pattern=pattern_text,
        verdict=verdict,
        verdict_reason=reason,
        scopes=scopes,
        iterations=iterations,
        drilldown=drill,
        stragglers=stragglers,
        straggler_na_reason=straggler_na,
        notes=notes,
    )
    report.findings = host_findings(report)
    report.handoff = host_handoff(report)
    return report


def _single_stall_caveat(aggregate: ScopeVerdict, largest: list[GapCause], config: HostConfig) -> None:
    """Say when one gap holds most of the host idle: one stall to fix, not per-launch overhead.

    A single long gap (a blocking call, a pause between requests the profiler kept) makes M1
    large however lean the per-kernel host path is; the launch/graph advice would then miss it.
    """
    fill = aggregate.attribution
    if not aggregate.host_bound or fill is None or fill.host_ns <= 0 or not largest:
        return
    gap = largest[0]
    share = (gap.length_ns - gap.copy_ns) / fill.host_ns
    if share < float(config.verdict_rule()["single_gap_share"]):
        return
    where = ", ".join(
        x
        for x in (
            f"host API {gap.host_api}" if gap.host_api else "",
            f"range {gap.host_range}" if gap.host_range else "",
        )
        if x
    )
    aggregate.caveats.insert(
        0,
        f"one gap of {gap.length_ns / 1e6:,.1f} ms holds {share:.0%} of the host-attributable idle"
        f"{f' (host in {where})' if where else ''}: a single stall (a blocking call, or a pause with no work "
        "queued) rather than per-launch overhead — look at that gap before launch or graph advice",
    )


def _prep_na_reason(traces: list[Trace], preps: list[pd.DataFrame], pattern: str) -> str | None:
    if any(not p.empty for p in preps):
        return None
    if all(t.ranges.empty for t in traces):
        return "the trace has no NVTX/annotation ranges: host prep cannot be located (add NVTX ranges)"
    return (
        f"no NVTX/annotation/operator range matches the host-prep pattern {pattern!r} "
        "(name your prep range with --host-prep-range)"
    )


def _clock_notes(traces: list[Trace]) -> list[str]:
    """Say when ranks' clocks do not overlap: cross-rank timestamps are then never compared."""
    spans = [(int(t.kernels["start"].min()), int(t.kernels["end"].max()), t.label()) for t in traces]
    if len(spans) < 2:
        return []
    latest_start = max(s for s, _, _ in spans)
    earliest_end = min(e for _, e, _ in spans)
    if latest_start <= earliest_end:
        return []
    return [
        f"the traces' kernel spans do not overlap (offset >= {(latest_start - earliest_end) / 1e9:.3f} s): "
        "clocks differ between ranks, so only per-rank durations are compared, never timestamps across ranks"
    ]


def _aggregate_scope(devices: list[DeviceIntervals], config: HostConfig, prep_na: str | None) -> ScopeVerdict:
    """M1-M5 over each device's kernel span; the attribution (M1h, M2e) over its activity window.

    One kernel has no gap between kernels, so it gets a verdict only when copies give its
    timeline gaps to attribute (a copy-dominated run with one kernel is still copy-bound).
    """
    kernel_count = sum(dev.starts.size for dev in devices)
    copy_count = sum(dev.copies.starts.size for dev in devices)
    if kernel_count < MIN_KERNELS_FOR_VERDICT and (kernel_count == 0 or copy_count == 0):
        return ScopeVerdict(
            scope="aggregate",
            applicable=False,
            na_reason=(
                f"only {kernel_count} kernel(s) and no copies: there is no gap between kernels to attribute "
                f"to the host (a verdict needs at least {MIN_KERNELS_FOR_VERDICT})"
            ),
        )
    parts: list[ScopeTimes] = []
    fills = []
    activity = []
    launch_na: list[str] = []
    for dev in devices:
        span = kernel_span(dev.trace, dev.device)
        active = activity_window(dev.starts, dev.ends, dev.copies)
        if span is None or active is None:
            continue
        window = (np.array([span[0]], dtype=np.int64), np.array([span[1]], dtype=np.int64))
        times, reason, _ = scope_times(dev, window)
        parts.append(times)
        fills.append(dev.fill(window, "kernel span"))
        activity.append(dev.fill(active, "activity"))
        if reason:
            launch_na.append(reason)
    total = add_times(parts)
    fill = add_fills(fills, "kernel span")
    launch = "; ".join(sorted(set(launch_na))) or None
    metrics = metric_values(total, config, "aggregate", launch, prep_na, fill)
    return judge_scope(
        "aggregate", total, metrics, fill, config.verdict_rule(), add_fills(activity, "activity")
    )


def _phase_scope(
    phase: Scope,
    devices: list[DeviceIntervals],
    traces: list[Trace],
    iterations: list[IterationSet],
    config: HostConfig,
    prep_na: str | None,
) -> ScopeVerdict:
    parts: list[ScopeTimes] = []
    fills = []
    launch_na: list[str] = []
    for dev in devices:
        it = iterations[next(i for i, t in enumerate(traces) if t is dev.trace)]
        steps = [s for s in it.steady() if s.phase == phase and s.device == dev.device]
        if not steps:
            continue
        window: IntervalSet = intervals.union(
            np.array([s.start_ns for s in steps], dtype=np.int64),
            np.array([s.end_ns for s in steps], dtype=np.int64),
        )
        times, reason, _ = scope_times(dev, window)
        times.steps = len(steps)
        parts.append(times)
        fills.append(dev.fill(window, "steps"))
        if reason:
            launch_na.append(reason)
    if not parts:
        why = "; ".join(sorted({f"{it.method}: {it.phase_reason or it.reason}" for it in iterations}))
        return ScopeVerdict(scope=phase, applicable=False, na_reason=f"no steady-state {phase} steps ({why})")
    total = add_times(parts)
    fill = add_fills(fills, "steps")
    metrics = metric_values(total, config, phase, "; ".join(sorted(set(launch_na))) or None, prep_na, fill)
    return judge_scope(phase, total, metrics, fill, config.verdict_rule())


def _stragglers(
    traces: list[Trace], frames: list[pd.DataFrame], iterations: list[IterationSet]
) -> tuple[list[StragglerStat], str | None]:
    """Per rank (trace × device): steady step wall and collective time per step.

    The rank that arrives last at each collective waits least inside it, so the straggler is the
    rank with the longest steps *and* the least collective time per step. Only per-rank durations
    are used: clocks of different ranks may be offset.
    """
    stats: list[StragglerStat] = []
    for trace, frame, it in zip(traces, frames, iterations, strict=True):
        coll = collective_time(frame)
        for device in np.unique(frame["device"].to_numpy()):
            steps = [s for s in it.steady() if s.device == device]
            label = f"{trace.label()} device {int(device)}"
            if not steps:
                stats.append(
                    StragglerStat(rank=label, steps=0, avg_step_ns=None, collective_ns_per_step=None)
                )
                continue
            ids = np.array([s.index for s in steps])
            sel = (frame["device"].to_numpy() == device) & np.isin(frame["step"].to_numpy(), ids)
            stats.append(
                StragglerStat(
                    rank=label,
                    steps=len(steps),
                    avg_step_ns=float(np.mean([s.end_ns - s.start_ns for s in steps])),
                    collective_ns_per_step=float(coll[sel].sum()) / len(steps),
                )
            )
    known = [s for s in stats if s.avg_step_ns is not None]
    if len(known) < 2:
        return stats, "straggler detection needs at least two ranks/devices with isolated steps"
    walls = np.array([s.avg_step_ns for s in known], dtype=np.float64)
    if (walls.max() - walls.min()) / walls.mean() <= STRAGGLER_SPREAD:
        return stats, None
    coll = np.array([s.collective_ns_per_step or 0.0 for s in known])
    if coll.max() <= 0:
        return stats, "ranks differ in step time but run no collectives: no wait to attribute"
    known[int(np.argmin(coll))].straggler = True
    return stats, None
