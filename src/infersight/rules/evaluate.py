"""Evaluating a rule on one scope: conditions -> a Finding with evidence, advice, gain, confidence.

A *scope* is one place a domain looks at (a device, the run, a phase, a kernel, a rank, a
collective, a range) with its flat metrics. The domain builds the scopes; this module is the same
for all of them. A finding whose estimated gain is zero is dropped: there is nothing to act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from infersight.rules.confidence import CONFIDENCES
from infersight.rules.estimators import ESTIMATORS
from infersight.rules.finding import Evidence, Finding, Location
from infersight.rules.schema import Condition, Rule
from infersight.rules.templates import render
from infersight.rules.values import Metrics

FRACTION_METRICS = frozenset({"utilization", "graph_coverage"})


@dataclass(frozen=True)
class Scope:
    """One place the rules look at (analyze: a device, the total, or a phase) and its metrics."""

    kind: str  # which rules apply: a rule lists the scope kinds it speaks about
    key: str
    location: Location
    metrics: Metrics
    phase: str | None = None
    device_kind: str = "gpu"
    same_as: str | None = None  # key of a scope holding exactly the same kernels (its findings win)


def _context_evidence(names: tuple[str, ...], m: Metrics, cited: set[str]) -> list[Evidence]:
    """Evidence rows for metrics that explain a finding without being one of its conditions."""
    rows = []
    for name in names:
        if name in cited:
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
