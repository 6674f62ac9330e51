"""The rules engine: data-driven thresholds (``data/rules.toml``) over flat metric dicts.

The global profile is flattened into one metric dict per scope (each device, the total over
devices, each phase). A rule fires on a scope when all its conditions hold; a None/NaN metric
never satisfies a condition, so missing data can silence a rule but never trigger one. A rule
may list advice *variants*, each with its own conditions: the first variant whose conditions
hold (one without conditions always does) adds its advice and may swap the estimator, so e.g.
"capture in CUDA graphs" and "the run already replays graphs; widen capture" are both data.
Expected gain comes from a named *estimator* (code, below) that reads measured numbers of that
scope, and confidence from a named *confidence* function that says why it is not high. A finding
whose estimated gain is zero (e.g. launch calls fully hidden behind a busy GPU) is dropped: there
is nothing to act on. A phase that holds exactly the kernels of the only device repeats that
device's findings, so the repeats are dropped too (its own phase thresholds may still fire).

Units follow the profile: every time metric is in nanoseconds and named ``*_ns`` (evidence
carries unit "ns"), ratios are fractions. In rule texts a ``*_ns`` placeholder without a format
spec prints as a human duration ("12.1 µs", "261 ms"); with a spec it is the plain number.
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

from infersight.analyses.attribution import BUCKETS
from infersight.analyses.results import (
    DeviceAttribution,
    DeviceTimeline,
    EagerKernelStat,
    GapBucket,
    GlobalProfile,
    PhaseStat,
)
from infersight.render.sections import fmt_duration
from infersight.rules.attribution_metrics import attribution_metrics, phase_attribution_metrics
from infersight.rules.attribution_rules import (
    confidence_bucket,
    estimate_exposed_communication,
    estimate_exposed_copy,
    estimate_not_sized,
    estimate_uvm_migration,
)
from infersight.rules.finding import Confidence, Evidence, ExpectedGain, Finding, Location, Severity

MetricValue = float | int | str | None
Metrics = dict[str, MetricValue]
Comparison = Literal[">", ">=", "<", "<=", "=="]
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
SHORT_GAP_BOUND_NS = 100_000  # gaps below 100 µs: launch/dispatch latency (methodology §4 gap buckets)
SHORT_HOST_GAP_BOUND_NS = 1_000_000  # gaps below 1 ms: host overhead rather than waits
SMALL_SAMPLE_KERNELS = 1000
SLOW_LAUNCH_NS = 100_000  # a launch call averaging > 100 µs is not launch overhead (launches: 2-5 µs)
ONE_OFF_GAPS = 3  # at most this many gaps > 1 ms holding most of the idle: one-off waits
GAP_METRICS = {  # (lower, upper) ns of timeline.GAP_BUCKET_EDGES_NS -> metric name
    (0, 5_000): "gap_lt_5us_ns",
    (5_000, 20_000): "gap_5_20us_ns",
    (20_000, 100_000): "gap_20_100us_ns",
    (100_000, 1_000_000): "gap_100us_1ms_ns",
    (1_000_000, None): "gap_gt_1ms_ns",
}
FRACTION_METRICS = frozenset({"utilization", "graph_coverage"})
# Evidence listed after the conditions when a rule names none of its own.
DEFAULT_CONTEXT = ("wall_ns", "idle_ratio", "launch_overhead_ratio", "short_gap_ns", "kernel_count")
# Captures a rule applies to when it names none: its texts speak of GPUs, launches and graphs.
# "cpu": a CPU-only capture whose dominant operators stand in for kernels (Trace.device_kind);
# "mixed": the total/phase scope of CPU and GPU traces analysed together (no rule names it yet).
DEFAULT_DEVICE_KINDS = ("gpu",)
DEVICE_KINDS = frozenset({"gpu", "cpu", "mixed"})


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
        if not _is_number(value):
            return False
        return OPERATORS[self.op](value, self.threshold_for(phase))


@dataclass(frozen=True)
class Variant:
    """One advice variant of a rule: chosen when its conditions hold (none: always)."""

    name: str
    conditions: tuple[Condition, ...]
    advice: tuple[str, ...]
    estimator: str | None = None
    evidence: tuple[str, ...] = ()


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
    evidence: tuple[str, ...] = DEFAULT_CONTEXT
    variants: tuple[Variant, ...] = ()
    device_kinds: tuple[str, ...] = DEFAULT_DEVICE_KINDS
    bucket: str | None = None  # the wall-time bucket the rule addresses (gpu/communication/copy/host)

    def variant_for(self, metrics: Metrics, phase: str | None) -> Variant | None:
        """The first variant whose conditions all hold in this scope."""
        return next((v for v in self.variants if all(c.holds(metrics, phase) for c in v.conditions)), None)


@dataclass(frozen=True)
class Scope:
    """One place the rules look at: a device, the total, or a phase."""

    kind: Literal["device", "phase"]
    key: str
    location: Location
    metrics: Metrics
    phase: str | None = None
    device_kind: str = "gpu"
    same_as: str | None = None  # key of a scope holding exactly the same kernels (its findings win)


@cache
def load_rules() -> tuple[Rule, ...]:
    """The rules shipped in infersight/data/rules.toml."""
    text = resources.files("infersight").joinpath("data/rules.toml").read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text))


def _conditions(rule_id: str, raw: list[Mapping[str, Any]]) -> tuple[Condition, ...]:
    conditions = tuple(
        Condition(c["metric"], c["op"], float(c["threshold"]), dict(c.get("per_phase", {}))) for c in raw
    )
    for c in conditions:
        if c.op not in OPERATORS:
            raise ValueError(f"rule {rule_id}: unknown comparison {c.op!r}")
    return conditions


def _check_estimator(rule_id: str, name: str | None) -> None:
    if name is not None and name not in ESTIMATORS:
        raise ValueError(f"rule {rule_id}: unknown estimator {name!r}")


def _variant(rule_id: str, raw: Mapping[str, Any]) -> Variant:
    estimator = raw.get("estimator")
    _check_estimator(rule_id, estimator)
    return Variant(
        name=raw["name"],
        conditions=_conditions(rule_id, raw.get("conditions", [])),
        advice=tuple(raw.get("advice", [])),
        estimator=estimator,
        evidence=tuple(raw.get("evidence", [])),
    )


def parse_rules(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Rules from parsed TOML; unknown estimators/confidences/operators fail loudly here."""
    rules = []
    for raw in data.get("rule", []):
        _check_estimator(raw["id"], raw["estimator"])
        if raw["confidence"] not in CONFIDENCES:
            raise ValueError(f"rule {raw['id']}: unknown confidence rule {raw['confidence']!r}")
        rules.append(
            Rule(
                id=raw["id"],
                title=raw["title"],
                severity=raw.get("severity", "warning"),
                source=raw.get("source", ""),
                scopes=tuple(raw["scopes"]),
                conditions=_conditions(raw["id"], raw["conditions"]),
                estimator=raw["estimator"],
                confidence=raw["confidence"],
                advice=tuple(raw.get("advice", [])),
                verification=tuple(raw.get("verification", [])),
                evidence=tuple(raw.get("evidence", DEFAULT_CONTEXT)),
                variants=tuple(_variant(raw["id"], v) for v in raw.get("variant", [])),
                device_kinds=_device_kinds(raw["id"], raw.get("device_kinds", list(DEFAULT_DEVICE_KINDS))),
                bucket=_bucket(raw["id"], raw.get("bucket")),
            )
        )
    _check_one_rule_per_kind(rules)
    return tuple(rules)


def _bucket(rule_id: str, bucket: str | None) -> str | None:
    if bucket is not None and bucket not in BUCKETS:
        raise ValueError(f"rule {rule_id}: bucket must be one of {list(BUCKETS)}, got {bucket!r}")
    return bucket


def _device_kinds(rule_id: str, kinds: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(kinds) - DEVICE_KINDS)
    if unknown or not kinds:
        raise ValueError(f"rule {rule_id}: device_kinds must be some of {sorted(DEVICE_KINDS)}, got {kinds}")
    return tuple(kinds)


def _check_one_rule_per_kind(rules: list[Rule]) -> None:
    """A rule id may repeat (one text per capture kind) but never twice for the same kind:
    finding ids are ``<rule id>/<scope>``, so two rules of one id on one scope would collide."""
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        for kind in rule.device_kinds:
            if (rule.id, kind) in seen:
                raise ValueError(f"rule {rule.id}: defined twice for device kind {kind!r}")
            seen.add((rule.id, kind))


# ---------------------------------------------------------------- metrics


def _is_number(value: object) -> bool:
    """A real, non-NaN number (strings and None never satisfy or feed arithmetic)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


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


# ---------------------------------------------------------------- estimators


def _number(m: Metrics, name: str) -> float | None:
    value = m.get(name)
    return float(value) if _is_number(value) and value is not None else None


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _t(ns: float) -> str:
    return fmt_duration(ns)


def estimate_short_gaps(m: Metrics) -> ExpectedGain | None:
    """Graphs/fusion recover the short (< 100 µs) inter-kernel gaps: [0.5, 1.0] x that time / wall."""
    short, wall = _number(m, "short_gap_ns"), _number(m, "wall_ns")
    share = _ratio(short, wall)
    if share is None or short is None or wall is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"idle gaps shorter than 100 µs total {_t(short)} of {_t(wall)} wall ({share:.1%}); "
            "CUDA graphs/fusion typically remove half to all of that dispatch latency"
        ),
    )


def estimate_cpu_op_gaps(m: Metrics) -> ExpectedGain | None:
    """CPU capture: fewer, fused operators recover the short (< 100 µs) time between operators.

    Between dominant CPU operators the host thread runs Python and the PyTorch dispatcher, a
    fixed cost per operator; fusion (torch.compile) removes half to all of it: [0.5, 1.0] x that
    time / wall. No GPU mechanism (launches, graphs) is involved.
    """
    short, wall = _number(m, "short_gap_ns"), _number(m, "wall_ns")
    share = _ratio(short, wall)
    if share is None or short is None or wall is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"time between CPU operators in stretches shorter than 100 µs totals {_t(short)} of "
            f"{_t(wall)} wall ({share:.1%}): per-operator Python/dispatcher overhead, which fusing "
            "operators (torch.compile) typically removes half to all of"
        ),
    )


def estimate_eager_short_gaps(m: Metrics) -> ExpectedGain | None:
    """With graphs in use only the short gaps next to eager kernels are recoverable by wider capture.

    Gaps inside a graph replay are already the graph's own minimum; when the analysis could not
    tell which gaps border eager kernels (phases), fall back to all short gaps and say so.
    """
    eager, wall = _number(m, "eager_short_gap_ns"), _number(m, "wall_ns")
    share = _ratio(eager, wall)
    if share is None or eager is None or wall is None:
        gain = estimate_short_gaps(m)
        if gain is None:
            return None
        return gain.model_copy(
            update={
                "basis": gain.basis + "; gaps next to eager kernels are not computed for this scope, "
                "so gaps inside graph replays are counted too (an upper estimate)"
            }
        )
    short = _number(m, "short_gap_ns") or 0.0
    coverage = _number(m, "graph_coverage") or 0.0
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"CUDA graphs already replay {coverage:.0%} of kernels, so only idle gaps shorter than "
            f"100 µs next to an eager kernel count: {_t(eager)} of {_t(wall)} wall ({share:.1%}; "
            f"{_t(max(short - eager, 0.0))} of short gaps inside graph replays excluded); widening "
            "capture or fusing the eager kernels removes half to all of it"
        ),
    )


def estimate_idle_time(m: Metrics) -> ExpectedGain | None:
    """At most all idle time; at least half of the idle in gaps < 1 ms (host overhead, not waits)."""
    idle, wall = _number(m, "idle_ns"), _number(m, "wall_ns")
    high = _ratio(idle, wall)
    low = _ratio(_number(m, "gap_lt_1ms_ns"), wall)
    if high is None or idle is None or wall is None:
        return None
    low_v = min(0.5 * (low or 0.0), high)
    return ExpectedGain(
        low=low_v,
        high=high,
        basis=(
            f"idle {_t(idle)} of {_t(wall)} wall is the ceiling ({high:.1%}); "
            f"the floor is half the idle in gaps < 1 ms ({low_v:.1%}), "
            "the part host-side fixes reliably recover"
        ),
    )


def _exposed_launch(m: Metrics, idle_metric: str, idle_label: str, note: str) -> ExpectedGain | None:
    launch, idle, wall = _number(m, "launch_api_ns"), _number(m, idle_metric), _number(m, "wall_ns")
    if launch is None or idle is None or wall is None:
        return None
    exposed = min(launch, idle)
    share = _ratio(exposed, wall)
    if share is None:
        return None
    return ExpectedGain(
        low=0.5 * share,
        high=share,
        basis=(
            f"launch calls {_t(launch)}, {idle_label} {_t(idle)}: at most min(launch, idle) = "
            f"{_t(exposed)} of {_t(wall)} wall ({share:.1%}) is exposed launch cost{note}"
        ),
    )


def estimate_exposed_launch_time(m: Metrics) -> ExpectedGain | None:
    """Launch time only costs wall time where the GPU idles: min(launch, idle), [0.5, 1.0] x that."""
    return _exposed_launch(m, "idle_ns", "GPU idle", "")


def estimate_eager_exposed_launch_time(m: Metrics) -> ExpectedGain | None:
    """With graphs in use, only the idle next to eager kernels is launch cost wider capture removes."""
    if _number(m, "eager_gap_ns") is None:
        gain = estimate_exposed_launch_time(m)
        if gain is None:
            return None
        return gain.model_copy(
            update={"basis": gain.basis + "; gaps next to eager kernels are not computed for this scope"}
        )
    coverage = _number(m, "graph_coverage") or 0.0
    return _exposed_launch(
        m,
        "eager_gap_ns",
        "GPU idle next to eager kernels",
        f" (CUDA graphs already replay {coverage:.0%} of kernels; idle inside graph replays excluded)",
    )


ESTIMATORS: dict[str, Callable[[Metrics], ExpectedGain | None]] = {
    "short_gaps": estimate_short_gaps,
    "eager_short_gaps": estimate_eager_short_gaps,
    "idle_time": estimate_idle_time,
    "exposed_launch_time": estimate_exposed_launch_time,
    "eager_exposed_launch_time": estimate_eager_exposed_launch_time,
    "cpu_op_gaps": estimate_cpu_op_gaps,
    "exposed_copy": estimate_exposed_copy,
    "uvm_migration": estimate_uvm_migration,
    "exposed_communication": estimate_exposed_communication,
    "not_sized": estimate_not_sized,
}


# ---------------------------------------------------------------- confidence

LEVELS: tuple[Confidence, ...] = ("high", "medium", "low")


def _lowered(reasons: list[str], why_high: str) -> tuple[Confidence, str]:
    level = LEVELS[min(len(reasons), len(LEVELS) - 1)]
    return level, "; ".join(reasons) if reasons else why_high


def confidence_launch_bound(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles (> 30%) and launch overhead is measured; lowered otherwise."""
    reasons = []
    idle = _number(m, "idle_ratio")
    if idle is None:
        reasons.append("idle_ratio not applicable")
    elif idle <= 0.30:
        reasons.append(
            f"GPU idle only {idle:.1%}: kernels run back to back, so fusion helps more than graph replay"
        )
    if m.get("launch_overhead_ratio") is None:
        reasons.append("launch_overhead_ratio not applicable (no kernel-launch API calls recorded)")
    count = int(_number(m, "kernel_count") or 0)
    if count < SMALL_SAMPLE_KERNELS:
        reasons.append(f"only {count} kernels (< {SMALL_SAMPLE_KERNELS}): a short sample")
    return _lowered(reasons, "GPU idle > 30% with launch overhead measured and many kernels")


def confidence_idle(m: Metrics) -> tuple[Confidence, str]:
    """Idle time is measured directly; lowered for short captures or few kernels."""
    reasons = []
    count = int(_number(m, "kernel_count") or 0)
    if count < 100:
        reasons.append(f"only {count} kernels: the window may be dominated by start-up")
    wall = _number(m, "wall_ns") or 0.0
    if wall < 1_000_000.0:
        reasons.append(f"window only {_t(wall)} long")
    long_ns, long_count, idle = (
        _number(m, "gap_gt_1ms_ns"),
        _number(m, "gap_gt_1ms_count"),
        _number(m, "idle_ns"),
    )
    if long_ns and long_count and idle and long_count <= ONE_OFF_GAPS and long_ns >= 0.5 * idle:
        reasons.append(
            f"{int(long_count)} gap(s) longer than 1 ms hold {long_ns / idle:.0%} of the idle time: "
            "one-off waits (start-up, a synchronisation, a pause between requests) rather than a "
            "per-step cost; cut the window to steady-state steps (--window-nvtx) to confirm"
        )
    return _lowered(reasons, "idle time is measured directly from the union of kernel intervals")


def confidence_launch_overhead(m: Metrics) -> tuple[Confidence, str]:
    """High when the GPU idles, so launch time is on the critical path; else it may be hidden.

    Lowered when launch calls are far slower than a launch costs (> SLOW_LAUNCH_NS on average):
    then their time is first-launch work (lazy module loading, JIT) or a full launch queue.
    """
    reasons = []
    idle = _number(m, "idle_ratio")
    if idle is None or idle <= 0.30:
        reasons.append("GPU mostly busy: launch calls overlap kernel execution and may be hidden")
    count = int(_number(m, "launch_api_count") or 0)
    if count < 100:
        reasons.append(f"only {count} launch calls: a short sample, dominated by start-up")
    avg = _number(m, "avg_launch_ns")
    if avg is not None and avg > SLOW_LAUNCH_NS:
        reasons.append(
            f"launch calls average {_t(avg)} (a launch costs 2-5 µs): start-up or blocking, "
            "not per-launch overhead"
        )
    return _lowered(reasons, "launch time measured from API calls and the GPU idles > 30%")


def confidence_cpu_dispatch(m: Metrics) -> tuple[Confidence, str]:
    """CPU capture: high when the thread spends > 30% between operators over many operators."""
    reasons = []
    idle = _number(m, "idle_ratio")
    if idle is None:
        reasons.append("idle_ratio not applicable")
    elif idle <= 0.30:
        reasons.append(
            f"only {idle:.1%} of the time lies between operators: the operators' own work dominates, "
            "so fusion saves mostly memory passes, less dispatch"
        )
    count = int(_number(m, "kernel_count") or 0)
    if count < SMALL_SAMPLE_KERNELS:
        reasons.append(f"only {count} operators (< {SMALL_SAMPLE_KERNELS}): a short sample")
    return _lowered(reasons, "over 30% of the thread's time lies between many short operators")


CONFIDENCES: dict[str, Callable[[Metrics], tuple[Confidence, str]]] = {
    "cpu_dispatch": confidence_cpu_dispatch,
    "launch_bound": confidence_launch_bound,
    "idle": confidence_idle,
    "launch_overhead": confidence_launch_overhead,
    "bucket": confidence_bucket,
}


# ---------------------------------------------------------------- evaluation


class _NA:
    """Formats as 'n/a' with any format spec, so templates survive missing metrics."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _Duration(float):
    """A time in ns: ``{x}`` prints a human duration (as the report tables do), ``{x:.0f}`` the number."""

    def __format__(self, spec: str) -> str:
        return fmt_duration(float(self)) if not spec else float.__format__(self, spec)


def _template_value(name: str, value: MetricValue) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _NA()
    if name.endswith("_ns") and _is_number(value):
        return _Duration(value)
    return value


class _Values(dict[str, object]):
    """Template values; a metric the scope does not have (e.g. a phase has no per-collective
    breakdown) prints as 'n/a' instead of failing."""

    def __missing__(self, key: str) -> object:
        return _NA()


def render(template: str, metrics: Metrics) -> str:
    """A rule text with metric values substituted (None or absent -> 'n/a', *_ns -> human duration)."""
    return template.format_map(_Values({k: _template_value(k, v) for k, v in metrics.items()}))


def _context_evidence(names: tuple[str, ...], m: Metrics, cited: set[str]) -> list[Evidence]:
    """Evidence rows for metrics that explain a finding without being one of its conditions."""
    rows = []
    for name in names:
        if name in cited or name not in m:  # a scope without that breakdown (a phase) skips it
            continue
        cited.add(name)
        value = m.get(name)
        reason = _na_reason(name, m)
        note = "" if value is not None else "not applicable" + (f": {reason}" if reason else "")
        rows.append(Evidence(metric=name, value=value, unit=_unit(name), note=note))
    return rows


def _na_reason(metric: str, m: Metrics) -> str | None:
    """Why a metric is None, from ``<metric>_na_reason`` (``launch_overhead_ratio`` ->
    ``launch_overhead_na_reason``), when the analysis said."""
    for key in (f"{metric}_na_reason", f"{metric.removesuffix('_ratio')}_na_reason"):
        reason = m.get(key)
        if isinstance(reason, str) and reason:
            return reason
    return None


def _condition_evidence(
    conditions: tuple[Condition, ...], m: Metrics, phase: str | None, note: str
) -> list[Evidence]:
    return [
        Evidence(
            metric=c.metric,
            value=m.get(c.metric),
            unit=_unit(c.metric),
            threshold=c.threshold_for(phase),
            comparison=c.op,
            note=note,
        )
        for c in conditions
    ]


def evaluate_rule(rule: Rule, scope: Scope) -> Finding | None:
    """The finding of one rule on one scope, or None when a condition does not hold."""
    if scope.kind not in rule.scopes or scope.device_kind not in rule.device_kinds:
        return None
    m = scope.metrics
    if not all(c.holds(m, scope.phase) for c in rule.conditions):
        return None
    variant = rule.variant_for(m, scope.phase)
    evidence = _condition_evidence(rule.conditions, m, scope.phase, rule.source)
    cited = {c.metric for c in rule.conditions}
    if variant is not None:
        evidence += _condition_evidence(
            variant.conditions, m, scope.phase, f"selects the '{variant.name}' advice"
        )
        cited |= {c.metric for c in variant.conditions}
    evidence += _context_evidence(rule.evidence + (variant.evidence if variant else ()), m, cited)
    advice = (variant.advice if variant else ()) + rule.advice
    estimator = (variant.estimator if variant else None) or rule.estimator
    gain = ESTIMATORS[estimator](m)
    if gain is not None and gain.high <= 0.0:
        return None  # the measured numbers leave nothing to recover (e.g. launch time fully hidden)
    confidence, why = CONFIDENCES[rule.confidence](m)
    return Finding(
        id=f"{rule.id}/{scope.key}",
        type=rule.id,
        title=render(rule.title, m),
        severity=rule.severity,
        location=scope.location,
        evidence=evidence,
        advice=[render(a, m) for a in advice],
        expected_gain=gain,
        confidence=confidence,
        confidence_reason=why,
        verification=[render(v, m) for v in rule.verification],
        bucket=rule.bucket,
    )


def _unit(metric: str) -> str:
    """The evidence unit, from the metric's name (the renderer formats values by it)."""
    if metric.endswith("_ns"):
        return "ns"
    if metric.endswith("_ratio") or metric in FRACTION_METRICS:
        return "fraction"
    return "count" if metric.endswith("count") or metric == "steps" else ""


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
