"""The kernel deep-dive rules (``data/ncu_rules.toml``, methodology §6) -> findings with evidence.

Each rule reads one kernel's canonical metrics (or the run's, for communication-bound). Its
conditions decide whether it fires; a missing condition metric means "not evaluated" and the
check names the metric and the ncu section that would settle it. Supporting conditions that
are missing do not stop the rule but lower the confidence, and the reason names them too. The
expected gain is computed by a named estimator from the kernel's own measured numbers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from infersight.ncu.metrics import metric_table
from infersight.ncu.results import RuleCheck
from infersight.rules.schema import Condition
from infersight.rules.templates import render
from infersight.rules.values import Metrics
from infersight.rules.finding import Confidence, Evidence, ExpectedGain, Finding, Location, Severity

DURATION_CV_LIMIT = 0.10  # methodology §7: run-to-run variation above 10% lowers confidence


@dataclass(frozen=True)
class Variant:
    """Extra advice chosen when its conditions hold."""

    name: str
    conditions: tuple[Condition, ...]
    advice: tuple[str, ...]


@dataclass(frozen=True)
class KernelRule:
    """One rule of ncu_rules.toml."""

    id: str
    scope: str
    title: str
    verdict: str
    severity: Severity
    source: str
    conditions: tuple[Condition, ...]
    supporting: tuple[Condition, ...]
    categories: tuple[str, ...]
    estimator: str
    advice: tuple[str, ...]
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class RuleSet:
    """The rules and the estimator parameters."""

    rules: tuple[KernelRule, ...]
    params: Mapping[str, float]


def _conditions(raw: list[Mapping[str, Any]]) -> tuple[Condition, ...]:
    return tuple(Condition(c["metric"], c["op"], float(c["threshold"])) for c in raw)


@cache
def load_kernel_rules() -> RuleSet:
    """The rules shipped in infersight/data/ncu_rules.toml."""
    text = resources.files("infersight").joinpath("data/ncu_rules.toml").read_text(encoding="utf-8")
    return parse_kernel_rules(tomllib.loads(text))


def parse_kernel_rules(data: Mapping[str, Any]) -> RuleSet:
    """Rules from parsed TOML; unknown estimators or scopes fail here, not at evaluation."""
    rules = []
    for raw in data["rule"]:
        if raw["estimator"] not in ESTIMATORS:
            raise ValueError(f"ncu rule {raw['id']}: unknown estimator {raw['estimator']!r}")
        if raw["scope"] not in ("kernel", "run"):
            raise ValueError(f"ncu rule {raw['id']}: unknown scope {raw['scope']!r}")
        rules.append(
            KernelRule(
                id=raw["id"],
                scope=raw["scope"],
                title=raw["title"],
                verdict=raw["verdict"],
                severity=raw.get("severity", "warning"),
                source=raw.get("source", ""),
                conditions=_conditions(raw["conditions"]),
                supporting=_conditions(raw.get("supporting", [])),
                categories=tuple(raw.get("categories", [])),
                estimator=raw["estimator"],
                advice=tuple(raw.get("advice", [])),
                variants=tuple(
                    Variant(v["name"], _conditions(v.get("conditions", [])), tuple(v.get("advice", [])))
                    for v in raw.get("variant", [])
                ),
            )
        )
    return RuleSet(tuple(rules), {k: float(v) for k, v in data["estimators"].items()})


# ---------------------------------------------------------------- estimators


def _num(m: Metrics, name: str) -> float | None:
    value = m.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def estimate_sol_headroom(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Time can shrink until the busiest unit reaches the latency threshold (low) / ceiling (high)."""
    busiest = _num(m, "busiest_unit_pct")
    if busiest is None:
        return None
    ceiling, latency = p["practical_ceiling_pct"], p["latency_threshold_pct"]
    floor = _floor_cap(m, p)
    basis = (
        f"busiest unit at {busiest:.0f}% of peak; at {latency:.0f}%-{ceiling:.0f}% the same work takes "
        f"{busiest / latency:.0%}-{busiest / ceiling:.0%} of today's time"
    )
    if floor < 1.0:
        basis += f"; capped at {floor:.0%} by the {p['min_kernel_ns'] / 1e3:.0f} µs kernel floor"
    return ExpectedGain(
        low=min(floor, _clamp(1 - busiest / latency)),
        high=min(floor, _clamp(1 - busiest / ceiling)),
        unit="fraction_of_kernel_time",
        basis=basis,
    )


def _floor_cap(m: Metrics, p: Mapping[str, float]) -> float:
    """The largest fraction of a kernel's time any change can save: 1 - floor / duration."""
    duration = _num(m, "duration_ns")
    return 1.0 if duration is None else _clamp(1 - p["min_kernel_ns"] / duration)


def estimate_fewer_bytes(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """A DRAM-bound kernel's time scales with its bytes: saving a fraction of them saves that share."""
    dram = _num(m, "dram_throughput_pct")
    if dram is None:
        return None
    share = dram / 100
    low, high = p["bytes_saved_low"], p["bytes_saved_high"]
    return ExpectedGain(
        low=_clamp(low * share),
        high=_clamp(high * share),
        unit="fraction_of_kernel_time",
        basis=f"DRAM busy {dram:.0f}% of the kernel; moving {low:.0%}-{high:.0%} fewer bytes "
        "(8-bit instead of 16-bit data for part / all of the traffic)",
    )


def estimate_tensor_headroom(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Tensor pipe from u% to the 40% threshold (low) or a tuned GEMM's target (high), capped by memory."""
    tensor = _num(m, "tensor_pipe_pct")
    if tensor is None:
        return None
    memory = _num(m, "memory_throughput_pct") or 0.0
    cap = _clamp(1 - memory / p["practical_ceiling_pct"])
    target = p["tensor_target_pct"]
    return ExpectedGain(
        low=min(cap, _clamp(1 - tensor / 40.0)),
        high=min(cap, _clamp(1 - tensor / target)),
        unit="fraction_of_kernel_time",
        basis=f"tensor pipe {tensor:.0f}% -> 40%-{target:.0f}%, capped by memory throughput {memory:.0f}%",
    )


def estimate_bank_conflicts(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Conflicts replay shared-memory wavefronts: removing c per request saves c/(1+c) of them."""
    conflicts = _num(m, "bank_conflicts_per_request")
    if conflicts is None:
        return None
    saved = conflicts / (1 + conflicts)
    busiest = _num(m, "busiest_unit_pct")
    high = min(saved, _clamp(1 - busiest / p["practical_ceiling_pct"])) if busiest is not None else saved
    return ExpectedGain(
        low=0.0,
        high=_clamp(high),
        unit="fraction_of_kernel_time",
        basis=f"{conflicts:.1f} conflicts per request replay {saved:.0%} of shared-memory wavefronts; "
        "the gain reaches that only when shared memory limits the kernel",
    )


def estimate_coalescing(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Excess sectors are wasted traffic: coalescing saves 1 - ideal/actual of the load traffic."""
    sectors = _num(m, "global_load_sectors_per_request")
    if sectors is None:
        return None
    ideal = p["coalesced_sectors_per_request"]
    wasted = _clamp(1 - ideal / sectors)
    memory = _num(m, "memory_throughput_pct")
    share = memory / 100 if memory is not None else 1.0
    return ExpectedGain(
        low=0.0,
        high=_clamp(wasted * share),
        unit="fraction_of_kernel_time",
        basis=f"{sectors:.1f} sectors/request vs {ideal:.0f} when coalesced: {wasted:.0%} of load sectors "
        f"are excess, times the memory-busy share ({share:.0%})",
    )


def estimate_launch_overhead(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """CUDA graphs remove a per-launch host cost: count x cost / wall time of the trace."""
    count, wall = _num(m, "trace_count"), _num(m, "trace_wall_ns")
    if count is None or not wall:
        return None
    low, high = p["launch_cost_low_ns"], p["launch_cost_high_ns"]
    return ExpectedGain(
        low=_clamp(count * low / wall),
        high=_clamp(count * high / wall),
        unit="fraction_of_wall_time",
        basis=f"{count:,.0f} launches x {low / 1e3:.0f}-{high / 1e3:.0f} µs of launch cost over "
        f"{wall / 1e6:.1f} ms of trace wall time",
    )


def estimate_nccl_overlap(m: Metrics, p: Mapping[str, float]) -> ExpectedGain | None:
    """Overlapping collectives hides their time: down to the 20% threshold (low) or all of it (high)."""
    share = _num(m, "nccl_share")
    if share is None:
        return None
    return ExpectedGain(
        low=_clamp(share - 0.2),
        high=_clamp(share),
        unit="fraction_of_kernel_time",
        basis=f"NCCL kernels are {share:.0%} of GPU kernel time; "
        "overlap hides part (down to 20%) or all of it",
    )


ESTIMATORS: dict[str, Callable[[Metrics, Mapping[str, float]], ExpectedGain | None]] = {
    "sol_headroom": estimate_sol_headroom,
    "fewer_bytes": estimate_fewer_bytes,
    "tensor_headroom": estimate_tensor_headroom,
    "bank_conflicts": estimate_bank_conflicts,
    "coalescing": estimate_coalescing,
    "launch_overhead": estimate_launch_overhead,
    "nccl_overlap": estimate_nccl_overlap,
}


# ---------------------------------------------------------------- evaluation


def _missing_hint(metric: str, missing: Mapping[str, str]) -> str:
    """'l2_hit_rate_pct (collect it with --section MemoryWorkloadAnalysis ...)' for the report."""
    if metric in missing:
        return f"{metric}: {missing[metric]}"
    base = {"l2_miss_pct": "l2_hit_rate_pct", "busiest_unit_pct": "sm_throughput_pct"}.get(metric, metric)
    spec = metric_table().metrics.get(base)
    if spec is not None:
        return f"{metric}: {spec.settle_hint()}"
    if metric.startswith("trace_") or metric == "nccl_share":
        return f"{metric}: needs the nsys/Kineto trace of the same run (--trace)"
    return f"{metric}: not measured"


@dataclass
class KernelScope:
    """What a rule sees: one kernel (or the run) and its metrics."""

    key: str
    category: str
    location: Location
    metrics: Metrics
    missing: Mapping[str, str]
    duration_cv: float | None = None
    launches: int = 1
    not_applicable: frozenset[str] = frozenset()


def evaluate(
    rule: KernelRule, scope: KernelScope, params: Mapping[str, float]
) -> tuple[Finding | None, RuleCheck]:
    """One rule on one scope: the finding (or None) and the check record for the report."""
    if rule.categories and scope.category not in rule.categories:
        return None, RuleCheck(rule=rule.id, kernel=scope.key, status="not_applicable")
    m = scope.metrics
    absent = [c.metric for c in rule.conditions if _num(m, c.metric) is None]
    if absent and all(metric in scope.not_applicable for metric in absent):
        return None, RuleCheck(rule=rule.id, kernel=scope.key, status="not_applicable")
    if absent:
        hints = [_missing_hint(metric, scope.missing) for metric in absent]
        return None, RuleCheck(rule=rule.id, kernel=scope.key, status="not_evaluated", missing=hints)
    if not all(c.holds(m, None) for c in rule.conditions):
        return None, RuleCheck(rule=rule.id, kernel=scope.key, status="passed")
    unmeasured = [c for c in rule.supporting if _num(m, c.metric) is None]
    if any(not c.holds(m, None) for c in rule.supporting if c not in unmeasured):
        return None, RuleCheck(rule=rule.id, kernel=scope.key, status="passed")
    variant = next((v for v in rule.variants if all(c.holds(m, None) for c in v.conditions)), None)
    evidence = [_evidence(c, m, rule.source) for c in rule.conditions]
    evidence += [_evidence(c, m, "supporting condition") for c in rule.supporting]
    if variant is not None:
        evidence += [_evidence(c, m, f"selects the '{variant.name}' advice") for c in variant.conditions]
    confidence, reason = _confidence(rule, scope, unmeasured)
    advice = [render(a, m) for a in (variant.advice if variant else ()) + rule.advice]
    finding = Finding(
        id=f"ncu/{rule.id}/{scope.key}",
        type=f"ncu_{rule.id}",
        title=render(rule.title, m),
        severity=rule.severity,
        location=scope.location,
        evidence=evidence,
        advice=advice,
        expected_gain=ESTIMATORS[rule.estimator](m, params),
        confidence=confidence,
        confidence_reason=reason,
        verification=_verification(rule, scope),
    )
    missing = [_missing_hint(c.metric, scope.missing) for c in unmeasured]
    return finding, RuleCheck(rule=rule.id, kernel=scope.key, status="fired", missing=missing)


def _evidence(condition: Condition, m: Metrics, note: str) -> Evidence:
    value = m.get(condition.metric)
    unit = "%" if condition.metric.endswith("_pct") else ("ns" if condition.metric.endswith("_ns") else "")
    return Evidence(
        metric=condition.metric,
        value=value if not isinstance(value, bool) else None,
        unit="fraction" if condition.metric.endswith("_share") else unit,
        threshold=condition.threshold,
        comparison=condition.op,
        note=note if value is not None else "not measured",
    )


def _confidence(rule: KernelRule, scope: KernelScope, unmeasured: list[Condition]) -> tuple[Confidence, str]:
    reasons: list[str] = []
    if unmeasured:
        reasons.append(
            "not measured: " + "; ".join(_missing_hint(c.metric, scope.missing) for c in unmeasured)
        )
    if scope.duration_cv is not None and scope.duration_cv > DURATION_CV_LIMIT:
        reasons.append(
            f"launch durations vary by {scope.duration_cv:.0%} (> 10%): re-measure with warm-up and "
            "repeats and compare medians"
        )
    if rule.scope == "kernel" and scope.launches < 2:
        reasons.append("one profiled launch: profile a few (--launch-count 5) to see the variation")
    if not reasons:
        return "high", "every condition measured on the kernel's counters; launches agree within 10%"
    level: Confidence = "low" if len(unmeasured) > 1 or (unmeasured and len(reasons) > 1) else "medium"
    return level, "; ".join(reasons)


def _verification(rule: KernelRule, scope: KernelScope) -> list[str]:
    if rule.scope == "run":
        return [
            "nsys profile -t cuda,nvtx -o after <your command>  # then: infersight analyze after.nsys-rep"
        ]
    return [
        "infersight ncu-plan <trace>  # prints the ncu command for this kernel; rerun it after the change",
        f"infersight ncu after.csv  # compare {rule.conditions[0].metric} and the kernel duration",
    ]
