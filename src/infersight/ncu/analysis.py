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
from collections.abc import Mapping, Sequence

from infersight import __version__
from infersight.analyses.categories import categorize_name
from infersight.analyses.kernel_names import simplify_kernel_name
from infersight.analysis_report import AnalysisReport
from infersight.errors import InputError
from infersight.hardware.gpu_specs import GpuSpec, list_gpus, lookup_gpu
from infersight.ncu.device import export_device, identify_gpu
from infersight.ncu.metrics import ResolvedMetrics, resolve, stall_shares, tensor_flops_by_dtype
from infersight.ncu.nsight import compare
from infersight.ncu.reader import NcuExport, NcuLaunch
from infersight.ncu.results import (
    GpuIdentity,
    KernelProfile,
    LaunchConfig,
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
SCHEDULERS_PER_SM = 4  # warp schedulers (SM sub-partitions) per SM since Volta
# Block Limit metric -> how Nsight Compute's TheoreticalOccupancy rule names that limiter
LIMITERS = (
    ("block_limit_blocks", "blocks per SM"),
    ("block_limit_registers", "registers"),
    ("block_limit_shared_mem", "shared memory"),
    ("block_limit_warps", "warps per block"),
    ("block_limit_barriers", "barriers"),
)
LIMITER_FLAGS = {
    "registers": "limiter_registers",
    "shared memory": "limiter_shared_mem",
    "warps per block": "limiter_warps",
    "blocks per SM": "limiter_blocks",
}


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


def _identify(
    exports: list[NcuExport], option: str | None, trace: AnalysisReport | None
) -> tuple[GpuIdentity | None, GpuSpec | None]:
    """The GPU: --gpu, else the export (its device name, else its figures), else the trace's GPU."""
    if option:
        return GpuIdentity(name=option, source="option", match="option", reason="--gpu"), None
    launches = [launch for export in exports for launch in export.launches]
    device = export_device(launches, [resolve(launch) for launch in launches])
    identity = identify_gpu(device)
    if identity is not None and identity.match == "named":
        return identity.model_copy(update={"name": device.name}), None
    if identity is not None and identity.match in ("identified", "closest"):
        spec = next((g for g in list_gpus() if g.key == identity.key), None) if identity.usable else None
        return identity, spec
    if trace is not None:  # nothing or several entries fit the export: the trace names its GPU
        for summary in trace.profile.traces:
            if summary.gpus:
                return GpuIdentity(
                    name=summary.gpus[0],
                    source="trace",
                    match="trace",
                    observed=device.observed,
                    reason="the export does not say which GPU it ran on; the trace's GPU is used",
                ), None
    if identity is not None:  # ambiguous, no trace: say which entries fit, use none of them
        return identity.model_copy(update={"usable": False}), None
    return None, None


def _device_mismatch(spec: GpuSpec | None, trace: AnalysisReport | None) -> str | None:
    """A note when the export's GPU is not the trace's: the two profiles describe different runs."""
    if spec is None or trace is None:
        return None
    names = [name for summary in trace.profile.traces for name in summary.gpus]
    if not names:
        return None
    try:
        traced = lookup_gpu(names[0])
    except InputError:
        return None
    if traced.key == spec.key:
        return None
    return (
        f"the ncu export ran on {spec.name} but the trace on {traced.name}: kernel figures and trace "
        "shares come from different machines"
    )


def _unknown_reason(exports: list[NcuExport]) -> str:
    launches = [launch for export in exports for launch in export.launches]
    observed = export_device(launches, [resolve(launch) for launch in launches]).observed
    said = ", ".join(f"{k} {v}" for k, v in observed.items()) or "nothing about its device"
    return f"GPU unknown: the export says {said}, which names no GPU of the spec table; pass --gpu NAME"


def _trace_matches(
    trace: AnalysisReport | None, configs: Mapping[str, list[LaunchConfig]] | None
) -> dict[str, TraceMatch]:
    if trace is None:
        return {}
    configs = configs or {}
    return {
        k.name: TraceMatch(
            name=k.name,
            count=k.count,
            total_ns=k.total_ns,
            avg_ns=k.avg_ns,
            share=k.share,
            launch_configs=configs.get(k.name, []),
        )
        for k in trace.profile.kernels
    }


def _match(matches: dict[str, TraceMatch], short: str, launch: NcuLaunch) -> TraceMatch | None:
    """The trace's figures for this kernel: same simplified name; the launch configuration is
    compared where the trace recorded it (``launch_configs``) and a mismatch is said."""
    match = matches.get(short)
    if match is None:
        return None
    configs = match.launch_configs
    if not configs or launch.grid is None or launch.block is None:
        return match.model_copy(update={"config_match": None})
    wanted = (launch.grid, launch.block)
    same = next((c for c in configs if (c.grid, c.block) == wanted), None)
    if same is None:
        return match.model_copy(update={"config_match": False})
    return match.model_copy(
        update={
            "config_match": True,
            "count": same.count,
            "total_ns": same.total_ns,
            "avg_ns": same.total_ns / same.count,
            "share": match.share * same.total_ns / match.total_ns if match.total_ns else match.share,
        }
    )


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
    m.update(_sol_metrics(kernel))
    m.update(_occupancy_metrics(kernel))
    m.update(_launch_metrics(kernel))
    m.update(_stall_metrics(kernel))
    if kernel.trace is not None:
        m["trace_count"] = kernel.trace.count
        m["trace_avg_ns"] = kernel.trace.avg_ns
        m["trace_avg_us"] = kernel.trace.avg_ns / 1e3
        m["trace_share"] = kernel.trace.share
        m["trace_wall_ns"] = trace_wall_ns
    return m


def _product(dims: tuple[int, int, int] | None) -> float | None:
    return float(dims[0] * dims[1] * dims[2]) if dims else None


def _fill(
    metrics: dict[str, float | None],
    sources: dict[str, str],
    missing: dict[str, str],
    name: str,
    value: float | None,
    source: str,
) -> None:
    """Set a metric the export lacks from a computation, saying so (never over a measured one)."""
    if metrics.get(name) is None and value is not None:
        metrics[name], sources[name] = value, source
        missing.pop(name, None)


def launch_figures(
    metrics: dict[str, float | None],
    sources: dict[str, str],
    missing: dict[str, str],
    launch: tuple[tuple[int, int, int] | None, tuple[int, int, int] | None],
    spec: GpuSpec | None,
) -> list[str]:
    """Grid/block sizes, blocks per SM, SM count and waves per SM where the export lacks them;
    returns the occupancy limiters (the smallest Block Limit, ties kept, as Nsight Compute names them).

    Waves per SM = grid blocks / (blocks per SM x SMs), Nsight Compute's Launch Statistics definition.
    """
    grid, block = launch
    _fill(metrics, sources, missing, "grid_blocks", _product(grid), "the export's Grid Size column")
    _fill(metrics, sources, missing, "block_threads", _product(block), "the export's Block Size column")
    if spec is not None and spec.sm_count:
        _fill(metrics, sources, missing, "sm_count", float(spec.sm_count), f"GPU spec table ({spec.name})")
    if (max_warps := metrics.get("max_warps_per_sm")) is not None:
        metrics["max_warps_per_sm"] = float(round(max_warps))  # a hardware count; the ratio rounds
    limits = {label: value for key, label in LIMITERS if (value := metrics.get(key)) is not None}
    if not limits:
        return []
    blocks_per_sm = min(limits.values())
    metrics["blocks_per_sm"] = blocks_per_sm
    sources["blocks_per_sm"] = "smallest Block Limit (Occupancy section)"
    grid_blocks, sm_count = metrics.get("grid_blocks"), metrics.get("sm_count")
    if grid_blocks and sm_count and blocks_per_sm > 0:
        how = (
            f"computed: {grid_blocks:,.0f} blocks / ({blocks_per_sm:.0f} blocks per SM x {sm_count:.0f} SMs)"
        )
        _fill(metrics, sources, missing, "waves_per_sm", grid_blocks / (blocks_per_sm * sm_count), how)
    return [label for label, value in limits.items() if value == blocks_per_sm]


def _sol_metrics(kernel: KernelProfile) -> Metrics:
    """The speed-of-light inputs of Nsight Compute's SOLBottleneck rule: SM % and memory % of peak."""
    sm = kernel.metrics.get("sm_throughput_pct")
    memory = kernel.metrics.get("memory_throughput_pct")
    memory = memory if memory is not None else kernel.metrics.get("dram_throughput_pct")
    both = sm is not None and memory is not None
    return {
        "sol_memory_pct": memory,
        "memory_lead_pct": memory - sm if both else None,  # type: ignore[operator]
        "compute_lead_pct": sm - memory if both else None,  # type: ignore[operator]
    }


def _occupancy_metrics(kernel: KernelProfile) -> Metrics:
    """Occupancy gap, limiter flags and names, warps per scheduler, issue interval."""
    m = kernel.metrics
    theoretical, achieved = m.get("theoretical_occupancy_pct"), m.get("achieved_occupancy_pct")
    out: Metrics = {
        "occupancy_gap_pct": theoretical - achieved
        if theoretical is not None and achieved is not None
        else None,
        "occupancy_limiter": " and ".join(kernel.occupancy_limiters) or None,
    }
    for label, flag in LIMITER_FLAGS.items():
        out[flag] = (
            (1.0 if label in kernel.occupancy_limiters else 0.0) if kernel.occupancy_limiters else None
        )
    issue = m.get("issue_active_pct")
    out["issue_every_cycles"] = 100 / issue if issue else None
    for name in ("theoretical_warps_per_sm", "max_warps_per_sm"):
        value = m.get(name)
        out[name.replace("_per_sm", "_per_scheduler")] = (
            value / SCHEDULERS_PER_SM if value is not None else None
        )
    return out


STALL_FAMILIES = {  # reason -> the advice variant of warp_stall_dominant
    "long_scoreboard": "stall_memory",
    "lg_throttle": "stall_memory",
    "tex_throttle": "stall_memory",
    "drain": "stall_memory",
    "short_scoreboard": "stall_shared",
    "mio_throttle": "stall_shared",
    "barrier": "stall_barrier",
    "membar": "stall_barrier",
    "no_instruction": "stall_fetch",
    "branch_resolving": "stall_fetch",
}


def _stall_metrics(kernel: KernelProfile) -> Metrics:
    """The dominant warp-stall reason and its share (Nsight Compute's CPIStall input)."""
    if not kernel.stall_shares:
        return {"top_stall_share_pct": None, "top_stall_reason": None}
    reason, share = max(kernel.stall_shares.items(), key=lambda item: item[1])
    out: Metrics = {"top_stall_share_pct": 100 * share, "top_stall_reason": reason.replace("_", " ")}
    for flag in set(STALL_FAMILIES.values()):
        out[flag] = 1.0 if STALL_FAMILIES.get(reason) == flag else 0.0
    return out


def _launch_metrics(kernel: KernelProfile) -> Metrics:
    """Tail effect, blocks per SM in the grid, idle lanes of a partial warp (LaunchConfiguration)."""
    m = kernel.metrics
    waves, grid, sms, threads = (
        m.get(k) for k in ("waves_per_sm", "grid_blocks", "sm_count", "block_threads")
    )
    tail = None
    if waves is not None:
        whole = int(waves)
        tail = 100 / (1 + whole) if whole >= 1 and waves - whole > 1e-9 else 0.0
    return {
        "tail_effect_pct": tail,
        "grid_blocks_per_sm": grid / sms if grid is not None and sms else None,
        "block_partial_warp_threads": threads % 32 if threads is not None else None,
    }


def _median_stalls(group: list[NcuLaunch]) -> dict[str, float]:
    """Median share per stall reason over the launches that carry the breakdown."""
    per_reason: dict[str, list[float]] = defaultdict(list)
    for launch in group:
        for reason, share in stall_shares(launch).items():
            per_reason[reason].append(share)
    return {reason: statistics.median(values) for reason, values in per_reason.items()}


def build_kernel(
    group: list[NcuLaunch], peaks: GpuPeaks, matches: dict[str, TraceMatch], spec: GpuSpec | None = None
) -> KernelProfile:
    """One kernel's profile from its launches."""
    first = group[0]
    resolved = [resolve(launch) for launch in group]
    metrics, sources, missing = _aggregate(resolved)
    limiters = launch_figures(metrics, sources, missing, (first.grid, first.block), spec)
    stalls = _median_stalls(group)
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
        occupancy_limiters=limiters,
        stall_shares=stalls,
        roofline=roofline_point(metrics, tensor_median, peaks),
        trace=_match(matches, short, first),
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
        verdict=profile.primary_bottleneck.headline if profile.primary_bottleneck is not None else None,
        categories={c.category: c.share for c in sorted(profile.categories, key=lambda c: -c.share)},
    )


def analyze_ncu(
    exports: list[NcuExport],
    *,
    gpu: str | None = None,
    trace: AnalysisReport | None = None,
    trace_configs: Mapping[str, list[LaunchConfig]] | None = None,
) -> NcuReport:
    """The integrated report: per-kernel counters, roofline points, rule findings, trace overview."""
    identity, spec = _identify(exports, gpu, trace)
    gpu_name = (spec.name if spec is not None else identity.name) if identity is not None else None
    unknown = None if identity is not None else _unknown_reason(exports)
    if identity is not None and spec is None and identity.match in ("closest", "ambiguous"):
        unknown = identity.reason
        gpu_name = None
    peaks = GpuPeaks(gpu_name, spec=spec, unknown_reason=unknown)
    if spec is None and peaks.spec is not None:
        spec = peaks.spec
    matches = _trace_matches(trace, trace_configs)
    launches = [launch for export in exports for launch in export.launches]
    kernels = [build_kernel(group, peaks, matches, spec) for group in _group(launches)]
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
    nsight, coverage = compare(kernels, findings, checks)
    notes = [note for export in exports for note in export.notes]
    if peaks.reason:
        notes.append(f"E_roof not applicable: {peaks.reason}")
    if (mismatch := _device_mismatch(spec, trace)) is not None:
        notes.append(mismatch)
    if trace is None:
        notes.append(
            "no --trace: launch-bound and communication-bound need the nsys/Kineto trace of the same run"
        )
    return NcuReport(
        tool_version=__version__,
        sources=[export.source for export in exports],
        gpu_name=gpu_name,
        gpu_name_source=identity.source if identity is not None else None,
        gpu=identity,
        kernels=kernels,
        trace=overview,
        findings=findings,
        checks=checks,
        nsight_rules=nsight,
        nsight_coverage=coverage,
        notes=notes,
    )
