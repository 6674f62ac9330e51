"""Evaluating a rule on one scope: conditions -> a Finding with evidence, advice, gain, confidence.

A *scope* is one place a domain looks at (a device, the run, a phase, a kernel, a rank, a
collective, a range) with its flat metrics. The domain builds the scopes; this module is the same
for all of them. A finding whose estimated gain is zero is dropped: there is nothing to act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from infersight.rules.confidence import CONFIDENCES, LEVELS
from infersight.rules.estimators import ESTIMATORS
from infersight.rules.finding import Confidence, Evidence, Finding, Location
from infersight.rules.schema import Condition, Rule, Variant
from infersight.rules.templates import render
from infersight.rules.values import Metrics

FRACTION_METRICS = frozenset({"utilization", "graph_coverage"})
UnitOf = Callable[[str], str]


def unit_of(metric: str) -> str:
    """The evidence unit, from the metric's name (the renderer formats values by it)."""
    if metric.endswith("_ns"):
        return "ns"
    if metric.endswith("_ratio") or metric in FRACTION_METRICS:
        return "fraction"
    return "count" if metric.endswith("count") or metric == "steps" else ""


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
    notes: Mapping[str, str] = field(default_factory=dict)  # metric -> where its value comes from


def _with_note(note: str, extra: str | None) -> str:
    if not extra:
        return note
    return f"{note}; {extra}" if note else extra


def _context_evidence(names: tuple[str, ...], scope: Scope, cited: set[str], unit: UnitOf) -> list[Evidence]:
    """Evidence rows for metrics that explain a finding without being one of its conditions."""
    m = scope.metrics
    rows = []
    for name in names:
        if name in cited:
            continue
        cited.add(name)
        value = m.get(name)
        reason = _na_reason(name, m)
        note = "" if value is not None else "not applicable" + (f": {reason}" if reason else "")
        rows.append(
            Evidence(metric=name, value=value, unit=unit(name), note=_with_note(note, scope.notes.get(name)))
        )
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
    conditions: tuple[Condition, ...], scope: Scope, note: str, unit: UnitOf
) -> list[Evidence]:
    return [
        Evidence(
            metric=c.metric,
            value=scope.metrics.get(c.metric),
            unit=unit(c.metric),
            threshold=c.threshold_for(scope.phase),
            comparison=c.op,
            note=_with_note(note, scope.notes.get(c.metric)),
        )
        for c in conditions
    ]


def _variant_note(variant: Variant) -> str:
    return f"selects the '{variant.name}' " + ("advice" if variant.advice else "variant")


def confidence_of(rule: Rule, m: Metrics) -> tuple[Confidence, str]:
    """The rule's confidence: its named function, or its fixed level with its reason text."""
    if rule.confidence in LEVELS:
        return cast(Confidence, rule.confidence), render(rule.confidence_reason, m)
    return CONFIDENCES[rule.confidence](m)


def evaluate_rule(rule: Rule, scope: Scope, *, unit: UnitOf = unit_of) -> Finding | None:
    """The finding of one rule on one scope, or None when a condition does not hold.

    ``unit`` names the evidence unit of a metric (the domain's naming convention).
    """
    if scope.kind not in rule.scopes or scope.device_kind not in rule.device_kinds:
        return None
    m = scope.metrics
    if not all(c.holds(m, scope.phase) for c in rule.conditions):
        return None
    variant = rule.variant_for(m, scope.phase)
    evidence = _condition_evidence(rule.conditions, scope, rule.source, unit)
    cited = {c.metric for c in rule.conditions}
    if variant is not None:
        evidence += _condition_evidence(variant.conditions, scope, _variant_note(variant), unit)
        cited |= {c.metric for c in variant.conditions}
    evidence += _context_evidence(rule.evidence + (variant.evidence if variant else ()), scope, cited, unit)
    advice = (variant.advice if variant else ()) + rule.advice
    estimator = (variant.estimator if variant else None) or rule.estimator
    gain = ESTIMATORS[estimator](m)
    if rule.drop_zero_gain and gain is not None and gain.high <= 0.0:
        return None  # the measured numbers leave nothing to recover (e.g. launch time fully hidden)
    confidence, why = confidence_of(rule, m)
    return Finding(
        id=f"{rule.id}/{scope.key}",
        type=rule.id,
        title=render(rule.title, m),
        severity=(variant.severity if variant else None) or rule.severity,
        location=scope.location,
        evidence=evidence,
        advice=[render(a, m) for a in advice],
        expected_gain=gain,
        confidence=confidence,
        confidence_reason=why,
        verification=[render(v, m) for v in rule.verification],
        bucket=rule.bucket,
    )
