"""Kernel deep dive (methodology §6): ncu exports (+ optional nsys/Kineto profile) -> :class:`NcuReport`.

Launches of the same kernel (same full name, grid and block) are one :class:`KernelProfile`
holding the median of each canonical metric over its launches; the spread of the durations
feeds the confidence (methodology §7: > 10% variation lowers it). A kernel is joined to the trace on
its simplified name, which is what both profilers agree on (ncu and Kineto demangle template
literals differently: ``(int)128`` vs ``128``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence

from infersight import __version__
from infersight.analyses.categories import categorize_name
from infersight.analyses.kernel_names import simplify_kernel_name
from infersight.analysis_report import AnalysisReport
from infersight.ncu.metrics import ResolvedMetrics, gpu_name_of, resolve, tensor_flops_by_dtype
from infersight.ncu.reader import NcuExport, NcuLaunch
from infersight.ncu.results import (
    KernelProfile,
    NcuReport,
    NcuRuleNote,
    RuleCheck,
    TraceKernelShare,
    TraceMatch,
    TraceOverview,
)
from infersight.ncu.roofline import GpuPeaks, roofline_point
from infersight.ncu.rules import KernelScope, evaluate, load_kernel_rules
from infersight.rules.engine import Metrics
from infersight.rules.finding import Finding, Location

SOL_LATENCY_PCT = 60.0
SOL_GAP_PCT = 10.0
SOL_HIGH_PCT = 80.0
TRACE_TOP = 10
NCCL_CATEGORY = "NCCL"


def sol_verdict(sm_pct: float | None, memory_pct: float | None, waves: float | None) -> str | None:
    """Speed-of-light verdict as Nsight Compute's SOLBottleneck rule (methodology §6)."""
    if sm_pct is None or memory_pct is None:
        return None
    if sm_pct < SOL_LATENCY_PCT and memory_pct < SOL_LATENCY_PCT:
        verdict = "latency-bound"
        if waves is not None and waves < 1:
            verdict += f" (grid too small: {waves:.2f} waves)"
        return verdict
    if abs(sm_pct - memory_pct) >= SOL_GAP_PCT:
        verdict = "compute-bound" if sm_pct > memory_pct else "memory-bound"
    else:
        verdict = "balanced"
    if max(sm_pct, memory_pct) >= SOL_HIGH_PCT:
        unit = "SM" if sm_pct >= memory_pct else "memory"
        verdict += f"; {unit} at >= {SOL_HIGH_PCT:.0f}%: move work to a less-used unit"
    return verdict


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _aggregate(
    resolved: list[ResolvedMetrics],
) -> tuple[dict[str, float | None], dict[str, str], dict[str, str]]:
    """Median per canonical metric over launches; sources/missing reasons from the launches."""
    names = list(resolved[0].values)
    metrics: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    missing: dict[str, str] = {}
    for name in names:
        numbers = [r.values[name] for r in resolved if isinstance(r.values.get(name), float)]
        metrics[name] = _median([float(v) for v in numbers if v is not None])
        if metrics[name] is None:
            missing[name] = next((r.missing[name] for r in resolved if name in r.missing), "not measured")
        else:
            sources[name] = next(r.sources[name] for r in resolved if name in r.sources)
    return metrics, sources, missing


def _duration_cv(resolved: list[ResolvedMetrics]) -> float | None:
    durations = [v for r in resolved if isinstance(v := r.values.get("duration_ns"), float)]
    if len(durations) < 2 or statistics.fmean(durations) <= 0:
        return None
    return statistics.stdev(durations) / statistics.fmean(durations)


def _group(launches: list[NcuLaunch]) -> list[list[NcuLaunch]]:
    groups: dict[tuple[str, object, object], list[NcuLaunch]] = defaultdict(list)
    for launch in launches:
        groups[(launch.kernel_name, launch.grid, launch.block)].append(launch)
    return list(groups.values())


def _gpu_name(
    exports: list[NcuExport], option: str | None, trace: AnalysisReport | None
) -> tuple[str | None, str | None]:
    if option:
        return option, "option"
    for export in exports:
        for launch in export.launches:
            if name := gpu_name_of(launch):
                return name, "export"
    if trace is not None:
        for summary in trace.profile.traces:
            if summary.gpus:
                return summary.gpus[0], "trace"
    return None, None


def _trace_matches(trace: AnalysisReport | None) -> dict[str, TraceMatch]:
    if trace is None:
        return {}
    return {
        k.name: TraceMatch(name=k.name, count=k.count, total_ns=k.total_ns, avg_ns=k.avg_ns, share=k.share)
        for k in trace.profile.kernels
    }


def _rule_metrics(kernel: KernelProfile, trace_wall_ns: int | None) -> Metrics:
    m: Metrics = dict(kernel.metrics)
    l2_hit = kernel.metrics.get("l2_hit_rate_pct")
    # a hit rate above 100% is damage, not a negative miss rate
    m["l2_miss_pct"] = 100.0 - l2_hit if l2_hit is not None and l2_hit <= 100.0 else None
    units = [
        v
        for v in (kernel.metrics.get("sm_throughput_pct"), kernel.metrics.get("memory_throughput_pct"))
        if v is not None
    ]
    m["busiest_unit_pct"] = max(units) if units else None
    if kernel.trace is not None:
        m["trace_count"] = kernel.trace.count
        m["trace_avg_ns"] = kernel.trace.avg_ns
        m["trace_avg_us"] = kernel.trace.avg_ns / 1e3
        m["trace_share"] = kernel.trace.share
        m["trace_wall_ns"] = trace_wall_ns
    return m


def build_kernel(group: list[NcuLaunch], peaks: GpuPeaks, matches: dict[str, TraceMatch]) -> KernelProfile:
    """One kernel's profile from its launches."""
    first = group[0]
    resolved = [resolve(launch) for launch in group]
    metrics, sources, missing = _aggregate(resolved)
    tensor: dict[str, list[float]] = defaultdict(list)
    for launch in group:
        for dtype, value in tensor_flops_by_dtype(launch).items():
            tensor[dtype].append(value)
    tensor_median = {dtype: statistics.median(values) for dtype, values in tensor.items()}
    short = simplify_kernel_name(first.kernel_name)
    memory = metrics.get("memory_throughput_pct")
    return KernelProfile(
        name=first.kernel_name,
        short_name=short,
        category=categorize_name(first.kernel_name),
        grid=first.grid,
        block=first.block,
        launches=len(group),
        launch_ids=[launch.id for launch in group],
        source=first.source,
        metrics=metrics,
        metric_sources=sources,
        missing=missing,
        not_applicable=sorted(set.intersection(*(r.not_applicable for r in resolved))),
        duration_cv=_duration_cv(resolved),
        sol_verdict=sol_verdict(
            metrics.get("sm_throughput_pct"),
            memory if memory is not None else metrics.get("dram_throughput_pct"),
            metrics.get("waves_per_sm"),
        ),
        roofline=roofline_point(metrics, tensor_median, peaks),
        trace=matches.get(short),
        ncu_rules=[
            NcuRuleNote(
                name=r.name,
                type=r.type,
                description=r.description,
                speedup_type=r.speedup_type,
                speedup_pct=r.speedup_pct,
            )
            for r in first.rules
        ],
    )


def _trace_overview(trace: AnalysisReport, profiled: set[str]) -> TraceOverview:
    profile = trace.profile
    nccl = next((c for c in profile.categories if c.category == NCCL_CATEGORY), None)
    return TraceOverview(
        source=[t.source for t in profile.traces],
        wall_ns=profile.total.wall_ns,
        kernel_time_ns=profile.total.kernel_time_ns,
        top_kernels=[
            TraceKernelShare(
                name=k.name,
                category=k.category,
                count=k.count,
                total_ns=k.total_ns,
                share=k.share,
                profiled=k.name in profiled,
            )
            for k in profile.kernels[:TRACE_TOP]
        ],
        nccl_share=nccl.share if nccl is not None else (0.0 if profile.kernels else None),
    )


def analyze_ncu(
    exports: list[NcuExport], *, gpu: str | None = None, trace: AnalysisReport | None = None
) -> NcuReport:
    """The integrated report: per-kernel counters, roofline points, rule findings, trace overview."""
    gpu_name, gpu_source = _gpu_name(exports, gpu, trace)
    peaks = GpuPeaks(gpu_name)
    matches = _trace_matches(trace)
    launches = [launch for export in exports for launch in export.launches]
    kernels = [build_kernel(group, peaks, matches) for group in _group(launches)]
    kernels.sort(
        key=lambda k: -(k.trace.total_ns if k.trace else 0) - (k.metrics.get("duration_ns") or 0) * 1e-9
    )
    overview = _trace_overview(trace, {k.short_name for k in kernels}) if trace is not None else None
    rules = load_kernel_rules()
    findings: list[Finding] = []
    checks: list[RuleCheck] = []
    for index, kernel in enumerate(kernels):
        key = f"k{index}:{kernel.short_name}"
        scope = KernelScope(
            key=key,
            category=kernel.category,
            location=Location(scope="kernel", kernel=kernel.short_name, category=kernel.category),
            metrics=_rule_metrics(kernel, overview.wall_ns if overview else None),
            missing=kernel.missing,
            not_applicable=frozenset(kernel.not_applicable),
            duration_cv=kernel.duration_cv,
            launches=kernel.launches,
        )
        for rule in rules:
            if "kernel" in rule.scopes:
                finding, check = evaluate(rule, scope)
                checks.append(check)
                findings += [finding] if finding else []
    run_scope = KernelScope(
        key="run",
        category="",
        location=Location(scope="run"),
        metrics={"nccl_share": overview.nccl_share if overview else None},
        missing={},
        kind="run",
    )
    for rule in rules:
        if "run" in rule.scopes:
            finding, check = evaluate(rule, run_scope)
            checks.append(check)
            findings += [finding] if finding else []
    notes = [note for export in exports for note in export.notes]
    if peaks.reason:
        notes.append(f"E_roof not applicable: {peaks.reason}")
    if trace is None:
        notes.append(
            "no --trace: launch-bound and communication-bound need the nsys/Kineto trace of the same run"
        )
    return NcuReport(
        tool_version=__version__,
        sources=[export.source for export in exports],
        gpu_name=gpu_name,
        gpu_name_source=gpu_source,
        kernels=kernels,
        trace=overview,
        findings=findings,
        checks=checks,
        notes=notes,
    )
