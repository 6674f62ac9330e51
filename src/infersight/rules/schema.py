"""The rule schema shared by every domain: conditions, advice variants and rules, parsed from TOML.

A rule fires on a scope (a flat dict of metrics) when all its ``conditions`` hold; a None/NaN
metric never satisfies a condition, so missing data can silence a rule but never trigger one. A
rule may list advice *variants*, each with its own conditions: the first variant whose
conditions hold (one without conditions always does) adds its advice and may swap the
estimator. ``estimator`` and ``confidence`` name functions of the registries in
:mod:`infersight.rules.estimators` and :mod:`infersight.rules.confidence`; an unknown name, an
unknown comparison or an unknown bucket fails when the rule table is parsed, not when it runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from infersight.rules.confidence import CONFIDENCES, LEVELS
from infersight.rules.estimators import ESTIMATORS
from infersight.rules.finding import Severity
from infersight.rules.values import Metrics, is_number

Comparison = Literal[">", ">=", "<", "<=", "=="]
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}
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
        if not is_number(value):
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
    severity: Severity | None = None  # overrides the rule's severity when chosen


@dataclass(frozen=True)
class Rule:
    """One rule of a rule table (``data/rules.toml`` and the other ``data/*_rules.toml``)."""

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
    evidence: tuple[str, ...] = ()  # metrics cited after the conditions
    variants: tuple[Variant, ...] = ()
    device_kinds: tuple[str, ...] = DEFAULT_DEVICE_KINDS
    bucket: str | None = None  # the wall-time bucket the rule addresses (gpu/communication/copy/host)
    confidence_reason: str = ""  # the reason text of a fixed confidence level (confidence = "medium")
    # Must hold when measured; an unmeasured one does not stop the rule but is named and lowers the
    # confidence (the confidence function sees ``unmeasured_supporting``).
    supporting: tuple[Condition, ...] = ()
    categories: tuple[str, ...] = ()  # only scopes of these categories (e.g. kernel categories); () = all
    drop_zero_gain: bool = True  # a finding whose estimated gain is zero has nothing to act on

    def variant_for(self, metrics: Metrics, phase: str | None) -> Variant | None:
        """The first variant whose conditions all hold in this scope."""
        return next((v for v in self.variants if all(c.holds(metrics, phase) for c in v.conditions)), None)


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
        severity=raw.get("severity"),
    )


def parse_rules(
    data: Mapping[str, Any], *, default_evidence: tuple[str, ...] = (), drop_zero_gain: bool = True
) -> tuple[Rule, ...]:
    """Rules from parsed TOML; unknown estimators/confidences/operators fail loudly here.

    ``default_evidence``: the metrics cited after the conditions by a rule that names none.
    ``confidence`` names a registered confidence function, or is a fixed level ("high",
    "medium", "low") whose reason is the rule's ``confidence_reason`` text.
    ``drop_zero_gain``: drop findings whose estimated gain is zero (the table's default).
    """
    rules = []
    for raw in data.get("rule", []):
        _check_estimator(raw["id"], raw["estimator"])
        if raw["confidence"] not in CONFIDENCES and raw["confidence"] not in LEVELS:
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
                evidence=tuple(raw.get("evidence", default_evidence)),
                variants=tuple(_variant(raw["id"], v) for v in raw.get("variant", [])),
                device_kinds=_device_kinds(raw["id"], raw.get("device_kinds", list(DEFAULT_DEVICE_KINDS))),
                bucket=_bucket(raw["id"], raw.get("bucket")),
                confidence_reason=raw.get("confidence_reason", ""),
                supporting=_conditions(raw["id"], raw.get("supporting", [])),
                categories=tuple(raw.get("categories", [])),
                drop_zero_gain=raw.get("drop_zero_gain", drop_zero_gain),
            )
        )
    _check_one_rule_per_kind(rules)
    return tuple(rules)


def _bucket(rule_id: str, bucket: str | None) -> str | None:
    from infersight.analyses.attribution import BUCKETS  # the analyses import the domains' rule tables

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
