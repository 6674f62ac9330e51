"""The analyze rules: the global profile as scopes of flat metrics, evaluated with ``data/rules.toml``.

The global profile is flattened into one metric dict per scope (each device, the total over
devices, each phase) and every rule of ``data/rules.toml`` is evaluated on every scope by the
shared engine (:mod:`infersight.rules.schema`, :mod:`infersight.rules.evaluate`). Expected gain
and confidence come from named functions (:mod:`infersight.rules.estimators`,
:mod:`infersight.rules.confidence`, :mod:`infersight.rules.attribution_rules`). A phase that
holds exactly the kernels of the only device repeats that device's findings, so the repeats are
dropped (its own phase thresholds may still fire). Findings that address the run's primary
bottleneck come first.

Units follow the profile: every time metric is in nanoseconds and named ``*_ns`` (evidence
carries unit "ns"), ratios are fractions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from infersight.analyses.results import (
    DeviceAttribution,
    DeviceTimeline,
    EagerKernelStat,
    GapBucket,
    GlobalProfile,
    PhaseStat,
)
from infersight.rules import attribution_rules as _attribution_rules  # noqa: F401  (registers estimators)
from infersight.rules.attribution_metrics import attribution_metrics, phase_attribution_metrics
from infersight.rules.confidence import CONFIDENCES
from infersight.rules.estimators import ESTIMATORS
from infersight.rules.evaluate import Scope, evaluate_rule
from infersight.rules.finding import Finding, Location
from infersight.rules.schema import DEFAULT_DEVICE_KINDS, Condition, Rule, Variant
from infersight.rules.schema import parse_rules as parse_rule_table
from infersight.rules.templates import render
from infersight.rules.values import Metrics, MetricValue
from infersight.units import fmt_duration

__all__ = [
    "CONFIDENCES",
    "ESTIMATORS",
    "Condition",
    "MetricValue",
    "Metrics",
    "Rule",
    "Scope",
    "Variant",
    "device_metrics",
    "evaluate_rule",
    "evaluate_rules",
    "load_rules",
    "order_findings",
    "parse_rules",
    "phase_metrics",
    "render",
    "scopes_of",
]

SHORT_GAP_BOUND_NS = 100_000  # gaps below 100 µs: launch/dispatch latency (methodology §4 gap buckets)
SHORT_HOST_GAP_BOUND_NS = 1_000_000  # gaps below 1 ms: host overhead rather than waits
GAP_METRICS = {  # (lower, upper) ns of timeline.GAP_BUCKET_EDGES_NS -> metric name
    (0, 5_000): "gap_lt_5us_ns",
    (5_000, 20_000): "gap_5_20us_ns",
    (20_000, 100_000): "gap_20_100us_ns",
    (100_000, 1_000_000): "gap_100us_1ms_ns",
    (1_000_000, None): "gap_gt_1ms_ns",
}
# Evidence listed after the conditions when a rule names none of its own.
DEFAULT_CONTEXT = ("wall_ns", "idle_ratio", "launch_overhead_ratio", "short_gap_ns", "kernel_count")


@cache
def load_rules() -> tuple[Rule, ...]:
    """The rules shipped in infersight/data/rules.toml."""
    text = resources.files("infersight").joinpath("data/rules.toml").read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text))


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The analyze rules from parsed TOML (rules without ``evidence`` cite DEFAULT_CONTEXT)."""
    return parse_rule_table(data, default_evidence=DEFAULT_CONTEXT)


# ---------------------------------------------------------------- metrics


def _gap_metrics(buckets: list[GapBucket] | None, prefix: str = "") -> Metrics:
    """Per-bucket gap time plus the < 100 µs ('short') and < 1 ms totals, in ns."""
    out: Metrics = {f"{prefix}{name}": None for name in GAP_METRICS.values()}
    if buckets is None or not buckets:
        out[f"{prefix}gap_gt_1ms_count"] = None
        out[f"{prefix}short_gap_ns"] = None
        out[f"{prefix}gap_lt_1ms_ns"] = None
        out[f"{prefix}gap_ns"] = None
        return out
    for b in buckets:
        name = GAP_METRICS.get((b.lower_ns, b.upper_ns))
        if name:
            out[f"{prefix}{name}"] = b.total_ns
    out[f"{prefix}gap_gt_1ms_count"] = sum(b.count for b in buckets if b.upper_ns is None)
    out[f"{prefix}short_gap_ns"] = _gaps_below(buckets, SHORT_GAP_BOUND_NS)
    out[f"{prefix}gap_lt_1ms_ns"] = _gaps_below(buckets, SHORT_HOST_GAP_BOUND_NS)
    out[f"{prefix}gap_ns"] = sum(b.total_ns for b in buckets)
    return out


def _gaps_below(buckets: list[GapBucket], bound_ns: int) -> int:
    return sum(b.total_ns for b in buckets if b.upper_ns is not None and b.upper_ns <= bound_ns)


def _eager_kernels_text(kernels: list[EagerKernelStat]) -> str | None:
    """'name (time, count×), ...' for advice and evidence; None when there are none."""
    if not kernels:
        return None
    return ", ".join(f"{k.name} ({fmt_duration(k.total_ns)}, {k.count:,}×)" for k in kernels)


def _graph_metrics(
    kernel_count: int,
    kernel_time_ns: int,
    graph_count: int | None,
    graph_ns: int | None,
    coverage: float | None,
    na_reason: str | None,
    launches: int | None,
    eager: list[EagerKernelStat],
) -> Metrics:
    """CUDA-graph coverage metrics; eager_* are the complement of the graph kernels."""
    known = coverage is not None and graph_count is not None and graph_ns is not None
    return {
        "graph_coverage": coverage,
        "graph_coverage_na_reason": na_reason,
        "graph_kernel_count": graph_count,
        "graph_kernel_time_ns": graph_ns,
        "graph_launch_count": launches,
        "eager_kernel_count": kernel_count - graph_count if known and graph_count is not None else None,
        "eager_kernel_time_ns": kernel_time_ns - graph_ns if known and graph_ns is not None else None,
        "top_eager_kernels": _eager_kernels_text(eager) if known else None,
    }


def device_metrics(t: DeviceTimeline) -> Metrics:
    """Flat metrics of a device timeline (or the total)."""
    metrics: Metrics = {
        "wall_ns": t.wall_ns,
        "busy_ns": t.busy_ns,
        "idle_ns": t.idle_ns,
        "idle_ratio": t.idle_ratio if t.wall_ns > 0 else None,
        "utilization": t.utilization if t.wall_ns > 0 else None,
        "kernel_count": t.kernel_count,
        "kernel_time_ns": t.kernel_time_ns,
        "avg_kernel_ns": t.kernel_time_ns / t.kernel_count if t.kernel_count else None,
        "launch_api_count": t.launch_api_count,
        "launch_api_ns": t.launch_api_ns,
        "avg_launch_ns": (
            t.launch_api_ns / t.launch_api_count
            if t.launch_api_ns is not None and t.launch_api_count
            else None
        ),
        "launch_overhead_ratio": t.launch_overhead_ratio,
        "launch_overhead_na_reason": t.launch_overhead_na_reason,
        "steps": None,
    }
    metrics.update(_gap_metrics(t.gap_buckets))
    metrics.update(_gap_metrics(t.eager_gap_buckets, prefix="eager_"))
    metrics.update(
        _graph_metrics(
            t.kernel_count,
            t.kernel_time_ns,
            t.graph_kernel_count,
            t.graph_kernel_time_ns,
            t.graph_coverage,
            t.graph_coverage_na_reason,
            t.graph_launch_count,
            t.top_eager_kernels,
        )
    )
    return metrics


def phase_metrics(p: PhaseStat) -> Metrics:
    """Flat metrics of a phase."""
    metrics: Metrics = {
        "wall_ns": p.wall_ns,
        "busy_ns": p.busy_ns,
        "idle_ns": p.wall_ns - p.busy_ns,
        "idle_ratio": p.idle_ratio if p.wall_ns > 0 else None,
        "utilization": 1.0 - p.idle_ratio if p.wall_ns > 0 else None,
        "kernel_count": p.kernel_count,
        "kernel_time_ns": p.kernel_time_ns,
        "avg_kernel_ns": p.avg_kernel_ns,
        "launch_api_count": None,
        "launch_api_ns": None,
        "avg_launch_ns": None,
        "launch_overhead_ratio": p.launch_overhead_ratio,
        "launch_overhead_na_reason": p.launch_overhead_na_reason,
        "steps": p.steps,
    }
    metrics.update(_gap_metrics(p.gap_buckets))
    metrics.update(_gap_metrics(p.eager_gap_buckets, prefix="eager_"))
    metrics.update(
        _graph_metrics(
            p.kernel_count,
            p.kernel_time_ns,
            p.graph_kernel_count,
            p.graph_kernel_time_ns,
            p.graph_coverage,
            p.graph_coverage_na_reason,
            p.graph_launch_count,
            p.top_eager_kernels,
        )
    )
    return metrics


def _with_attribution(metrics: Metrics, device: DeviceAttribution | None) -> Metrics:
    """The device metrics plus its wall-time attribution metrics (none without one)."""
    return {**metrics, **attribution_metrics([device])} if device is not None else metrics


def _with_kind(metrics: Metrics, kind: str) -> Metrics:
    """The metrics plus ``device_kind`` (texts may name it; rules select on it)."""
    return {**metrics, "device_kind": kind}


def _common_kind(kinds: set[str]) -> str:
    """One capture kind for a scope over several traces: theirs when all agree, else "mixed"
    (no trace summaries at all: the default kind)."""
    if not kinds:
        return DEFAULT_DEVICE_KINDS[0]
    return next(iter(kinds)) if len(kinds) == 1 else "mixed"


def scopes_of(profile: GlobalProfile) -> list[Scope]:
    """Every device, the total (only when there are several devices), and every phase.

    Each scope carries the capture kind of its traces (``gpu``, or ``cpu`` for a CPU-only capture
    whose operators stand in for kernels), so rules only speak of GPUs where there was one.
    """
    kind_of_trace = {t.source: t.device_kind for t in profile.traces}
    attribution: dict[tuple[str, int | None, int | None], DeviceAttribution] = {
        (a.trace, a.rank, a.device): a for a in profile.time_attribution
    }

    def key_of(d: DeviceTimeline) -> tuple[str, int | None, int | None]:
        return (d.trace, d.rank, d.device)

    scopes = []
    for d in profile.devices:
        rank = f"rank{d.rank}/" if d.rank is not None else ""
        window = d.window.intervals_ns
        span = (window[0][0], window[-1][1]) if window else None
        kind = kind_of_trace.get(d.trace, DEFAULT_DEVICE_KINDS[0])
        scopes.append(
            Scope(
                kind="device",
                key=f"{rank}dev{d.device}",
                location=Location(scope="device", rank=d.rank, device=d.device, time_range_ns=span),
                metrics=_with_kind(_with_attribution(device_metrics(d), attribution.get(key_of(d))), kind),
                device_kind=kind,
            )
        )
    run_kind = _common_kind({t.device_kind for t in profile.traces if t.kernels})
    if len(profile.devices) > 1:
        scopes.append(
            Scope(
                "device",
                "total",
                Location(scope="run"),
                _with_kind(
                    {**device_metrics(profile.total), **attribution_metrics(profile.time_attribution)},
                    run_kind,
                ),
                device_kind=run_kind,
            )
        )
    only = profile.devices[0] if len(profile.devices) == 1 else None
    verdict = profile.primary_bottleneck
    phase_bucket_metrics = {
        p.phase: phase_attribution_metrics(p) for p in (verdict.phases if verdict else [])
    }
    for p in profile.phases.phases:
        whole_device = only is not None and (p.kernel_count, p.wall_ns) == (only.kernel_count, only.wall_ns)
        scopes.append(
            Scope(
                "phase",
                f"phase:{p.phase}",
                Location(scope="phase", phase=p.phase),
                _with_kind({**phase_metrics(p), **phase_bucket_metrics.get(p.phase, {})}, run_kind),
                p.phase,
                device_kind=run_kind,
                same_as=scopes[0].key if whole_device else None,
            )
        )
    return scopes


# ---------------------------------------------------------------- evaluation


def evaluate_rules(profile: GlobalProfile, rules: tuple[Rule, ...] | None = None) -> list[Finding]:
    """All findings, by expected gain (upper bound, then lower) descending."""
    scopes = scopes_of(profile)
    findings = [
        f
        for scope in scopes
        for rule in (rules if rules is not None else load_rules())
        if (f := evaluate_rule(rule, scope)) is not None
    ]
    repeats = {
        f"{f.type}/{scope.key}"
        for scope in scopes
        if scope.same_as is not None
        for f in findings
        if f.id == f"{f.type}/{scope.same_as}"
    }
    findings = [f for f in findings if f.id not in repeats]
    return order_findings(findings, profile.primary_bottleneck.bucket if profile.primary_bottleneck else None)


def order_findings(findings: list[Finding], primary_bucket: str | None) -> list[Finding]:
    """Findings that address the run's primary bottleneck first, then by expected gain (upper
    bound, then lower) descending: the first finding is about what limits the run."""

    def key(f: Finding) -> tuple[int, float, float]:
        gain = (f.expected_gain.high, f.expected_gain.low) if f.expected_gain else (-1.0, -1.0)
        return (1 if primary_bucket is not None and f.bucket == primary_bucket else 0, *gain)

    return sorted(findings, key=key, reverse=True)
