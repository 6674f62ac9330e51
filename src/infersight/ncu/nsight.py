"""Nsight Compute's own rule results next to infersight's findings: agreement, coverage, expected gain.

infersight computes its findings from the metrics alone (a raw export has no rule rows). A
``--page details`` export also carries Nsight Compute's verdicts; each OPT/WRN row is mapped to
the infersight rules that speak about the same bottleneck (``[[nsight_rule]]`` of
``data/ncu_rules.toml``) and marked:

* ``agrees`` — one of those rules fired on the kernel, and for the speed-of-light rule
  infersight's own verdict is of a compatible class;
* ``disagrees`` — the rules were evaluated and did not fire (the reason names the values and the
  thresholds), or the speed-of-light classes contradict (latency vs memory vs compute);
* ``not_covered`` — no infersight rule speaks about it, or its counters are not in the export.

Nsight Compute's ``Estimated Speedup`` enters the covering findings' expected gain: a *global*
estimate (a share of the kernel's time, as infersight's gains) widens the range to include it; a
*local* one (relative to its section only) is cited in the basis but not used.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from infersight.ncu.results import KernelProfile, NcuRuleNote, NsightCoverage, NsightRuleComparison, RuleCheck
from infersight.rules.finding import ExpectedGain, Finding

REPORTED_TYPES = ("OPT", "WRN")
COMPATIBLE_SOL = {  # Nsight Compute's class -> infersight verdict classes that do not contradict it
    "latency": {"latency"},
    "memory": {"memory"},
    "compute": {"compute"},
    "high": {"memory", "compute", "balanced"},
    "balanced": {"balanced", "memory", "compute"},
}


@dataclass(frozen=True)
class NsightCase:
    """One message of a Nsight Compute rule: a pattern of its description and the covering rules."""

    pattern: re.Pattern[str]
    kinds: tuple[str, ...]
    sol: str | None = None


@dataclass(frozen=True)
class NsightRule:
    """A Nsight Compute rule name (or prefix) and the infersight rules covering it."""

    name: str
    kinds: tuple[str, ...]
    cases: tuple[NsightCase, ...] = ()

    def matches(self, name: str) -> bool:
        """Exact name, or a prefix for names ending in '*' (CPIStall*)."""
        if self.name.endswith("*"):
            return name.startswith(self.name[:-1])
        return name == self.name

    def case_for(self, description: str) -> NsightCase:
        """The first case whose pattern is in the description, else the rule's default kinds."""
        for case in self.cases:
            if case.pattern.search(description):
                return case
        return NsightCase(re.compile(""), self.kinds)


def parse_nsight_rules(data: Mapping[str, Any], known: set[str]) -> tuple[NsightRule, ...]:
    """The mapping table; every kind must name an infersight rule (fails loudly otherwise)."""
    rules = []
    for raw in data.get("nsight_rule", []):
        cases = tuple(
            NsightCase(re.compile(c["match"], re.IGNORECASE), tuple(c["kinds"]), c.get("sol"))
            for c in raw.get("cases", [])
        )
        rule = NsightRule(raw["name"], tuple(raw["kinds"]), cases)
        unknown = {k for kinds in [rule.kinds, *(c.kinds for c in cases)] for k in kinds} - known
        if unknown:
            raise ValueError(f"nsight_rule {rule.name}: unknown infersight rule(s) {sorted(unknown)}")
        rules.append(rule)
    return tuple(rules)


@cache
def nsight_rules() -> tuple[NsightRule, ...]:
    """The ``[[nsight_rule]]`` table of ncu_rules.toml."""
    text = resources.files("infersight").joinpath("data/ncu_rules.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return parse_nsight_rules(data, {raw["id"] for raw in data["rule"]})


def sol_class(verdict: str | None) -> str | None:
    """'latency-bound (grid ...)' -> latency; 'memory-bound; ...' -> memory; etc."""
    if verdict is None:
        return None
    for cls in ("latency", "memory", "compute", "balanced"):
        if verdict.startswith(cls):
            return cls
    return None


def _kernel_rule(finding: Finding) -> str:
    return finding.type.removeprefix("ncu_")


Status = Literal["agrees", "disagrees", "not_covered"]


def _why_not(kinds: Sequence[str], checks: Sequence[RuleCheck]) -> tuple[Status, str]:
    """('disagrees' | 'not_covered', reason) from the covering rules' checks on this kernel."""
    passed = [c for c in checks if c.rule in kinds and c.status == "passed"]
    missing = [c for c in checks if c.rule in kinds and c.status == "not_evaluated"]
    if passed:
        return "disagrees", "infersight's " + ", ".join(
            c.rule for c in passed
        ) + " did not fire: its thresholds are not met"
    if missing:
        needs = sorted({m for c in missing for m in c.missing})
        return "not_covered", "not evaluated — " + "; ".join(needs)
    return "not_covered", "no infersight rule covers it on this kernel"


def _widen(finding: Finding, note: NcuRuleNote) -> None:
    """Add Nsight Compute's Estimated Speedup to the finding's expected gain (see the module doc)."""
    if note.speedup_pct is None:
        return
    kind = (note.speedup_type or "").lower()
    value = min(1.0, max(0.0, note.speedup_pct / 100))
    gain = finding.expected_gain
    if kind == "global" or (not kind and gain is None):
        if gain is None:
            finding.expected_gain = ExpectedGain(
                low=value,
                high=value,
                unit="fraction_of_kernel_time",
                basis=f"Nsight Compute's estimate ({note.name}, global): {value:.0%}",
            )
            return
        gain.low, gain.high = min(gain.low, value), max(gain.high, value)
        gain.basis += (
            f"; Nsight Compute's own estimate ({note.name}, global): {value:.0%}, included in the range"
        )
    elif gain is not None:
        gain.basis += (
            f"; Nsight Compute's estimate ({note.name}, local to its section): {value:.0%}, cited, not used"
        )


def compare(
    kernels: Sequence[KernelProfile], findings: Sequence[Finding], checks: Sequence[RuleCheck]
) -> tuple[list[NsightRuleComparison], NsightCoverage | None]:
    """Each OPT/WRN rule row of each kernel, matched against the kernel's findings."""
    table = nsight_rules()
    rows: list[NsightRuleComparison] = []
    covering: set[str] = set()
    with_rules: set[str] = set()
    for index, kernel in enumerate(kernels):
        key = f"k{index}"
        scope = f"{key}:{kernel.short_name}"
        mine = [f for f in findings if f.id.endswith(f"/{scope}")]
        kernel_checks = [c for c in checks if c.kernel == scope]
        if kernel.ncu_rules:
            with_rules.add(scope)
        for note in kernel.ncu_rules:
            if note.type not in REPORTED_TYPES:
                continue
            rule = next((r for r in table if r.matches(note.name)), None)
            case = rule.case_for(note.description) if rule else None
            kinds = list(case.kinds) if case else []
            hits = [f for f in mine if _kernel_rule(f) in kinds]
            status: Status = "agrees"
            reason = ""
            if not kinds:
                status, reason = "not_covered", "infersight has no rule for this Nsight Compute rule"
            elif not hits:
                status, reason = _why_not(kinds, kernel_checks)
            else:
                reason = "covered by " + ", ".join(_kernel_rule(f) for f in hits)
                ours = sol_class(kernel.sol_verdict)
                if case and case.sol and ours and ours not in COMPATIBLE_SOL[case.sol]:
                    status = "disagrees"
                    reason = (
                        f"Nsight Compute's speed-of-light class is {case.sol}, infersight's verdict is "
                        f"'{kernel.sol_verdict}' (SM {kernel.metrics.get('sm_throughput_pct')}%, memory "
                        f"{kernel.metrics.get('memory_throughput_pct')}%)"
                    )
                for finding in hits:
                    _widen(finding, note)
                covering.update(f.id for f in hits)
            rows.append(
                NsightRuleComparison(
                    kernel=key,
                    rule=note.name,
                    type=note.type,
                    description=note.description,
                    speedup_type=note.speedup_type,
                    speedup_pct=note.speedup_pct,
                    kinds=kinds,
                    status=status,
                    findings=[f.id for f in hits],
                    reason=reason,
                )
            )
    if not with_rules:
        return rows, None
    only = [
        f.id
        for f in findings
        if f.id not in covering and any(f.id.endswith(f"/{scope}") for scope in with_rules)
    ]
    coverage = NsightCoverage(
        rules=len(rows),
        covered=sum(r.status == "agrees" for r in rows),
        disagreements=sum(r.status == "disagrees" for r in rows),
        infersight_only=only,
    )
    return rows, coverage
