"""The rules engine: data-driven thresholds (``data/rules.toml``) over flat metric dicts.

The global profile is flattened into one metric dict per scope (each device, the total over
devices, each phase). A rule fires on a scope when all its conditions hold; a None/NaN metric
never satisfies a condition, so missing data can silence a rule but never trigger one. Expected
gain comes from a named *estimator* (code, below) that reads measured numbers of that scope, and
confidence from a named *confidence* function that says why it is not high.
"""

from __future__ import annotations

import math
import operator
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from infersight.analyses.results import DeviceTimeline, GapBucket, GlobalProfile, PhaseStat
from infersight.rules.finding import Confidence, Evidence, ExpectedGain, Finding, Location, Severity

Metrics = dict[str, float | int | None]
Comparison = Literal[">", ">=", "<", "<=", "=="]
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
NS_PER_US = 1000.0
SHORT_GAP_BOUND_NS = 100_000  # gaps below 100 µs: launch/dispatch latency (SPEC §4 gap buckets)
SMALL_SAMPLE_KERNELS = 1000
GAP_METRICS = {  # (lower, upper) ns of timeline.GAP_BUCKET_EDGES_NS -> metric name
    (0, 5_000): "gap_us_lt_5us",
    (5_000, 20_000): "gap_us_5_20us",
    (20_000, 100_000): "gap_us_20_100us",
    (100_000, 1_000_000): "gap_us_100us_1ms",
    (1_000_000, None): "gap_us_gt_1ms",
}


@dataclass(frozen=True)
class Condition:
    """``metric op threshold``, with optional per-phase thresholds."""

    metric: str
    op: Comparison
    threshold: float
    per_phase: Mapping[str, float] = field(default_factory=dict)

    def threshold_for(self, phase: str | None) -> float:
        """The threshold in a phase (its override) or the default."""
        return float(self.per_phase.get(phase, self.threshold)) if phase else self.threshold

    def holds(self, metrics: Metrics, phase: str | None) -> bool:
        """True only when the metric is a real number and the comparison holds."""
        value = metrics.get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](value, self.threshold_for(phase))


@dataclass(frozen=True)
class Rule:
    """One rule of rules.toml."""

    id: str
    title: str
    severity: Severity
    source: str
    scopes: tuple[str, ...]
    conditions: tuple[Condition, ...]
    estimator: str
    confidence: str
    advice: tuple[str, ...]
    verification: tuple[str, ...]


@dataclass(frozen=True)
class Scope:
    """One place the rules look at: a device, the total, or a phase."""

    kind: Literal["device", "phase"]
    key: str
    location: Location
    metrics: Metrics
    phase: str | None = None


@cache
def load_rules() -> tuple[Rule, ...]:
    """The rules shipped in infersight/data/rules.toml."""
    text = resources.files("infersight").joinpath("data/rules.toml").read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text))


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Rules from parsed TOML; unknown estimators/confidences/operators fail loudly here."""
    rules = []
    for raw in data.get("rule", []):
        conditions = tuple(
            Condition(c["metric"], c["op"], float(c["threshold"]), dict(c.get("per_phase", {})))
            for c in raw["conditions"]
        )
        for c in conditions:
            if c.op not in OPERATORS:
                raise ValueError(f"rule {raw['id']}: unknown comparison {c.op!r}")
        if raw["estimator"] not in ESTIMATORS:
            raise ValueError(f"rule {raw['id']}: unknown estimator {raw['estimator']!r}")
        if raw["confidence"] not in CONFIDENCES:
            raise ValueError(f"rule {raw['id']}: unknown confidence rule {raw['confidence']!r}")
        rules.append(
            Rule(
                id=raw["id"],
                title=raw["title"],
                severity=raw.get("severity", "warning"),
                source=raw.get("source", ""),
                scopes=tuple(raw["scopes"]),
                conditions=conditions,
                estimator=raw["estimator"],
                confidence=raw["confidence"],
                advice=tuple(raw.get("advice", [])),
                verification=tuple(raw.get("verification", [])),
            )
        )
    return tuple(rules)


# ---------------------------------------------------------------- metrics


def _us(ns: int | float | None) -> float | None:
    return None if ns is None else ns / NS_PER_US


def _gap_metrics(buckets: list[GapBucket]) -> Metrics:
    out: Metrics = {name: None for name in GAP_METRICS.values()}
    short = 0
    for b in buckets:
        name = GAP_METRICS.get((b.lower_ns, b.upper_ns))
        if name:
            out[name] = b.total_ns / NS_PER_US
        if b.upper_ns is not None and b.upper_ns <= SHORT_GAP_BOUND_NS:
            short += b.total_ns
    out["short_gap_us"] = short / NS_PER_US if buckets else None
    out["gap_us_lt_1ms"] = (
        sum(b.total_ns for b in buckets if b.upper_ns is not None and b.upper_ns <= 1_000_000) / NS_PER_US
        if buckets
        else None
    )
    return out


def device_metrics(t: DeviceTimeline) -> Metrics:
    """Flat metrics of a device timeline (or the total)."""
    metrics: Metrics = {
        "wall_us": _us(t.wall_ns),
        "busy_us": _us(t.busy_ns),
        "idle_us": _us(t.idle_ns),
        "idle_ratio": t.idle_ratio if t.wall_ns > 0 else None,
        "utilization": t.utilization if t.wall_ns > 0 else None,
        "kernel_count": t.kernel_count,
        "kernel_time_us": _us(t.kernel_time_ns),
        "avg_kernel_us": _us(t.kernel_time_ns / t.kernel_count) if t.kernel_count else None,
        "launch_api_count": t.launch_api_count,
        "launch_api_us": _us(t.launch_api_ns),
        "launch_overhead_ratio": t.launch_overhead_ratio,
        "steps": None,
    }
    metrics.update(_gap_metrics(t.gap_buckets))
    return metrics


def phase_metrics(p: PhaseStat) -> Metrics:
    """Flat metrics of a phase."""
    metrics: Metrics = {
        "wall_us": _us(p.wall_ns),
        "busy_us": _us(p.busy_ns),
        "idle_us": _us(p.wall_ns - p.busy_ns),
        "idle_ratio": p.idle_ratio if p.wall_ns > 0 else None,
        "utilization": 1.0 - p.idle_ratio if p.wall_ns > 0 else None,
        "kernel_count": p.kernel_count,
        "kernel_time_us": _us(p.kernel_time_ns),
        "avg_kernel_us": _us(p.avg_kernel_ns),
        "launch_api_count": None,
        "launch_api_us": None,
        "launch_overhead_ratio": p.launch_overhead_ratio,
        "steps": p.steps,
    }
    metrics.update(_gap_metrics(p.gap_buckets))
    return metrics


def scopes_of(profile: GlobalProfile) -> list[Scope]:
    """Every device, the total (only when there are several devices), and every phase."""
    scopes = []
    for d in profile.devices:
        rank = f"rank{d.rank}/" if d.rank is not None else ""
        window = d.window.intervals_ns
        span = (window[0][0], window[-1][1]) if window else None
        scopes.append(
            Scope(
                kind="device",
                key=f"{rank}dev{d.device}",
                location=Location(scope="device", rank=d.rank, device=d.device, time_range_ns=span),
                metrics=device_metrics(d),
            )
        )
    if len(profile.devices) > 1:
        scopes.append(Scope("device", "total", Location(scope="run"), device_metrics(profile.total)))
    for p in profile.phases.phases:
        scopes.append(
            Scope(
                "phase", f"phase:{p.phase}", Location(scope="phase", phase=p.phase), phase_metrics(p), p.phase
            )
        )
    return scopes


# ---------------------------------------------------------------- estimators


def _ratio(num: float | int | None, den: float | int | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return float(num) / float(den)


def estimate_short_gaps(m: Metrics) -> ExpectedGain | None:
    """Graphs/fusion recover the short (< 100 µs) inter-kernel gaps: [0.5, 1.0] x that time / wall."""
    share = _ratio(m.get("short_gap_us"), m.get("wall_us"))
    if share is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"idle gaps shorter than 100 µs total {m['short_gap_us']:.0f} µs of {m['wall_us']:.0f} µs wall "
            f"({share:.1%}); CUDA graphs/fusion typically remove half to all of that dispatch latency"
        ),
    )


def estimate_idle_time(m: Metrics) -> ExpectedGain | None:
    """At most all idle time; at least half of the idle in gaps < 1 ms (host overhead, not waits)."""
    high = _ratio(m.get("idle_us"), m.get("wall_us"))
    low = _ratio(m.get("gap_us_lt_1ms"), m.get("wall_us"))
    if high is None:
        return None
    low_v = min(0.5 * (low or 0.0), high)
    return ExpectedGain(
        low=low_v,
        high=high,
        basis=(
            f"idle {m['idle_us']:.0f} µs of {m['wall_us']:.0f} µs wall is the ceiling ({high:.1%}); "
            f"the floor is half the idle in gaps < 1 ms ({low_v:.1%}), "
            "the part host-side fixes reliably recover"
        ),
    )


def estimate_exposed_launch_time(m: Metrics) -> ExpectedGain | None:
    """Launch time only costs wall time where the GPU idles: min(launch, idle), [0.5, 1.0] x that."""
    launch, idle, wall = m.get("launch_api_us"), m.get("idle_us"), m.get("wall_us")
    if launch is None or idle is None:
        return None
    exposed = min(float(launch), float(idle))
    share = _ratio(exposed, wall)
    if share is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"launch calls {launch:.0f} µs, GPU idle {idle:.0f} µs: at most min(launch, idle) = "
            f"{exposed:.0f} µs of {wall:.0f} µs wall ({share:.1%}) is exposed launch cost"
        ),
    )


ESTIMATORS: dict[str, Callable[[Metrics], ExpectedGain | None]] = {
    "short_gaps": estimate_short_gaps,
    "idle_time": estimate_idle_time,
    "exposed_launch_time": estimate_exposed_launch_time,
}


# ---------------------------------------------------------------- confidence

LEVELS: tuple[Confidence, ...] = ("high", "medium", "low")


def _lowered(reasons: list[str], why_high: str) -> tuple[Confidence, str]:
    level = LEVELS[min(len(reasons), len(LEVELS) - 1)]
    return level, "; ".join(reasons) if reasons else why_high


def confidence_launch_bound(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles (> 30%) and launch overhead is measured; lowered otherwise."""
    reasons = []
    idle = m.get("idle_ratio")
    if idle is None:
        reasons.append("idle_ratio not applicable")
    elif idle <= 0.30:
        reasons.append(
            f"GPU idle only {idle:.1%}: kernels run back to back, so fusion helps more than graph replay"
        )
    if m.get("launch_overhead_ratio") is None:
        reasons.append("launch_overhead_ratio not applicable (no kernel-launch API calls recorded)")
    count = m.get("kernel_count") or 0
    if count < SMALL_SAMPLE_KERNELS:
        reasons.append(f"only {count} kernels (< {SMALL_SAMPLE_KERNELS}): a short sample")
    return _lowered(reasons, "GPU idle > 30% with launch overhead measured and many kernels")


def confidence_idle(m: Metrics) -> tuple[Confidence, str]:
    """Idle time is measured directly; lowered for short captures or few kernels."""
    reasons = []
    count = m.get("kernel_count") or 0
    if count < 100:
        reasons.append(f"only {count} kernels: the window may be dominated by start-up")
    wall = m.get("wall_us") or 0.0
    if wall < 1000.0:
        reasons.append(f"window only {wall:.0f} µs long")
    return _lowered(reasons, "idle time is measured directly from the union of kernel intervals")


def confidence_launch_overhead(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles, so launch time is on the critical path; else it may be hidden."""
    reasons = []
    idle = m.get("idle_ratio")
    if idle is None or idle <= 0.30:
        reasons.append("GPU mostly busy: launch calls overlap kernel execution and may be hidden")
    count = m.get("launch_api_count") or 0
    if count < 100:
        reasons.append(f"only {count} launch calls: a short sample, dominated by start-up")
    return _lowered(reasons, "launch time measured from API calls and the GPU idles > 30%")


CONFIDENCES: dict[str, Callable[[Metrics], tuple[Confidence, str]]] = {
    "launch_bound": confidence_launch_bound,
    "idle": confidence_idle,
    "launch_overhead": confidence_launch_overhead,
}


# ---------------------------------------------------------------- evaluation


class _NA:
    """Formats as 'n/a' with any format spec, so templates survive missing metrics."""

    def __format__(self, spec: str) -> str:
        return "n/a"


def render(template: str, metrics: Metrics) -> str:
    """A rule text with metric values substituted (None -> 'n/a')."""
    values = {
        k: (_NA() if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in metrics.items()
    }
    return template.format_map(values)


def evaluate_rule(rule: Rule, scope: Scope) -> Finding | None:
    """The finding of one rule on one scope, or None when a condition does not hold."""
    if scope.kind not in rule.scopes:
        return None
    m = scope.metrics
    if not all(c.holds(m, scope.phase) for c in rule.conditions):
        return None
    evidence = [
        Evidence(
            metric=c.metric,
            value=m.get(c.metric),
            unit=_unit(c.metric),
            threshold=c.threshold_for(scope.phase),
            comparison=c.op,
            note=rule.source,
        )
        for c in rule.conditions
    ]
    cited = {c.metric for c in rule.conditions}
    for name in ("wall_us", "idle_ratio", "launch_overhead_ratio", "short_gap_us", "kernel_count"):
        if name not in cited:
            value = m.get(name)
            evidence.append(
                Evidence(
                    metric=name,
                    value=value,
                    unit=_unit(name),
                    note="" if value is not None else "not applicable",
                )
            )
    confidence, why = CONFIDENCES[rule.confidence](m)
    location = scope.location
    return Finding(
        id=f"{rule.id}/{scope.key}",
        type=rule.id,
        title=render(rule.title, m),
        severity=rule.severity,
        location=location,
        evidence=evidence,
        advice=[render(a, m) for a in rule.advice],
        expected_gain=ESTIMATORS[rule.estimator](m),
        confidence=confidence,
        confidence_reason=why,
        verification=[render(v, m) for v in rule.verification],
    )


def _unit(metric: str) -> str:
    if metric.endswith("_us"):
        return "µs"
    if metric.endswith("_ratio") or metric == "utilization":
        return "fraction"
    return "count" if metric.endswith("count") or metric == "steps" else ""


def evaluate_rules(profile: GlobalProfile, rules: tuple[Rule, ...] | None = None) -> list[Finding]:
    """All findings, by expected gain (upper bound, then lower) descending."""
    findings = [
        f
        for scope in scopes_of(profile)
        for rule in (rules if rules is not None else load_rules())
        if (f := evaluate_rule(rule, scope)) is not None
    ]
    return sorted(
        findings,
        key=lambda f: (f.expected_gain.high, f.expected_gain.low) if f.expected_gain else (-1.0, -1.0),
        reverse=True,
    )
