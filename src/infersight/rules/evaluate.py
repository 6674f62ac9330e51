"""Evaluating a rule on one scope: conditions -> a Finding with evidence, advice, gain, confidence.

A *scope* is one place a domain looks at (a device, the run, a phase, a kernel, a rank, a
collective, a range) with its flat metrics. The domain builds the scopes; this module is the same
for all of them. A finding whose estimated gain is zero is dropped: there is nothing to act on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from infersight.rules.confidence import CONFIDENCES, LEVELS
from infersight.rules.estimators import ESTIMATORS
from infersight.rules.finding import Confidence, Evidence, Finding, Location
from infersight.rules.schema import Condition, Rule, Variant
from infersight.rules.templates import render
from infersight.rules.values import Metrics, number

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
    category: str | None = None  # what a rule's ``categories`` select on (a kernel's category)
    # metric -> how to measure it, for metrics the scope lacks (named when a rule cannot be checked)
    missing: Mapping[str, str] = field(default_factory=dict)
    not_applicable: frozenset[str] = frozenset()  # metrics that cannot exist here: rules on them do not apply
    # evidence the domain judged itself (its own thresholds, several rows): cited as is by name
    evidence: Mapping[str, tuple[Evidence, ...]] = field(default_factory=dict)


Status = Literal["fired", "passed", "not_evaluated", "not_applicable"]


@dataclass(frozen=True)
class Check:
    """What evaluating one rule on one scope gave: its status, the finding when it fired, and the
    metrics it lacked (with how to measure them): conditions when not evaluated, supporting
    conditions when it fired anyway."""

    status: Status
    finding: Finding | None = None
    missing: tuple[str, ...] = ()


def _with_note(note: str, extra: str | None) -> str:
    if not extra:
        return note
    return f"{note}; {extra}" if note else extra


def _context_evidence(names: tuple[str, ...], scope: Scope, cited: set[str], unit: UnitOf) -> list[Evidence]:
    """Evidence rows for metrics that explain a finding without being one of its conditions."""
    m = scope.metrics
    rows: list[Evidence] = []
    for name in names:
        if name in cited:
            continue
        if scope.kind == "phase" and name not in m and name not in scope.evidence:
            continue  # a phase has no per-direction / per-collective breakdown: nothing to cite
        cited.add(name)
        if name in scope.evidence:
            rows += scope.evidence[name]
            continue
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


def missing_hint(metric: str, scope: Scope) -> str:
    """'metric: how to measure it' for a metric the scope lacks."""
    return f"{metric}: {scope.missing.get(metric, 'not measured')}"


def evaluate_rule(rule: Rule, scope: Scope, *, unit: UnitOf = unit_of, prefix: str = "") -> Finding | None:
    """The finding of one rule on one scope, or None when it does not fire (see :func:`check_rule`)."""
    return check_rule(rule, scope, unit=unit, prefix=prefix).finding


def check_rule(rule: Rule, scope: Scope, *, unit: UnitOf = unit_of, prefix: str = "") -> Check:
    """One rule on one scope: not applicable (other scope kind, capture kind or category, or its
    metrics cannot exist here), not evaluated (a condition's metric is missing), passed (a
    condition or a measured supporting condition does not hold) or fired, with the finding.

    ``unit`` names the evidence unit of a metric (the domain's naming convention); ``prefix``
    namespaces finding ids and types (``ncu`` -> ``ncu/<rule>/<scope>``, ``ncu_<rule>``).
    """
    if scope.kind not in rule.scopes or scope.device_kind not in rule.device_kinds:
        return Check("not_applicable")
    if rule.categories and scope.category not in rule.categories:
        return Check("not_applicable")
    m = scope.metrics
    absent = [c.metric for c in rule.conditions if number(m, c.metric) is None]
    if absent and all(metric in scope.not_applicable for metric in absent):
        return Check("not_applicable")
    if absent:
        return Check("not_evaluated", missing=tuple(missing_hint(metric, scope) for metric in absent))
    if not all(c.holds(m, scope.phase) for c in rule.conditions):
        return Check("passed")
    unmeasured = [c for c in rule.supporting if number(m, c.metric) is None]
    if any(not c.holds(m, scope.phase) for c in rule.supporting if c not in unmeasured):
        return Check("passed")
    missing = tuple(missing_hint(c.metric, scope) for c in unmeasured)
    variant = rule.variant_for(m, scope.phase)
    evidence = _condition_evidence(rule.conditions, scope, rule.source, unit)
    evidence += [
        e if e.value is not None else e.model_copy(update={"note": "not measured"})
        for e in _condition_evidence(rule.supporting, scope, "supporting condition", unit)
    ]
    cited = {c.metric for c in rule.conditions + rule.supporting}
    if variant is not None:
        evidence += _condition_evidence(variant.conditions, scope, _variant_note(variant), unit)
        cited |= {c.metric for c in variant.conditions}
    evidence += _context_evidence(rule.evidence + (variant.evidence if variant else ()), scope, cited, unit)
    advice = (variant.advice if variant else ()) + rule.advice
    estimator = (variant.estimator if variant else None) or rule.estimator
    gain = ESTIMATORS[estimator](m)
    if rule.drop_zero_gain and gain is not None and gain.high <= 0.0:
        return Check("passed")  # the measured numbers leave nothing to recover (e.g. launch time hidden)
    seen = m
    if rule.supporting:
        seen = {
            **m,
            "unmeasured_supporting": "; ".join(missing) or None,
            "unmeasured_supporting_count": len(missing),
        }
    confidence, why = confidence_of(rule, seen)
    finding = Finding(
        id=f"{prefix}/{rule.id}/{scope.key}" if prefix else f"{rule.id}/{scope.key}",
        type=f"{prefix}_{rule.id}" if prefix else rule.id,
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
    return Check("fired", finding, missing)
