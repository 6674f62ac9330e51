"""The shared rules engine every domain uses: schema, registries, check statuses, one renderer."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from infersight.host.advice import host_rules
from infersight.ncu.rules import load_kernel_rules
from infersight.overlap.rules_data import overlap_rules, threshold
from infersight.render.findings import findings_markdown, print_findings
from infersight.rules.engine import load_rules
from infersight.rules.estimators import ESTIMATORS, estimator
from infersight.rules.evaluate import Scope, check_rule, evaluate_rule
from infersight.rules.finding import Evidence, ExpectedGain, Location
from infersight.rules.schema import parse_rules
from infersight.rules.values import Metrics

SRC = Path(__file__).resolve().parents[2] / "src" / "infersight"


@estimator("test_half_of_x")
def _half_of_x(m: Metrics) -> ExpectedGain | None:
    x = m.get("x")
    return ExpectedGain(low=0.0, high=float(x) / 2, basis="half of x") if isinstance(x, int | float) else None


RULE = {
    "id": "x_high",
    "title": "x is {x:.1f} on {where}",
    "scopes": ["thing"],
    "source": "a published source",
    "conditions": [{"metric": "x", "op": ">", "threshold": 0.5}],
    "supporting": [{"metric": "y", "op": "<", "threshold": 10}],
    "categories": ["GEMM"],
    "estimator": "test_half_of_x",
    "confidence": "medium",
    "confidence_reason": "fixed because {where} says so",
    "severity": "info",
    "evidence": ["z"],
    "advice": ["lower x on {where}"],
    "variant": [
        {
            "name": "very high",
            "severity": "critical",
            "conditions": [{"metric": "x", "op": ">", "threshold": 0.9}],
        }
    ],
}


def _scope(**metrics: float | str | None) -> Scope:
    return Scope(
        "thing",
        "t0",
        Location(scope="kernel", kernel="k"),
        {"where": "k", **metrics},
        category="GEMM",
        missing={"y": "collect it with --section Y"},
        notes={"x": "measured by the counter X"},
        evidence={"z": (Evidence(metric="z as judged", value=3, threshold=2, comparison=">"),)},
    )


def test_every_shipped_rule_table_parses_with_the_shared_schema() -> None:
    assert load_rules() and overlap_rules() and load_kernel_rules() and host_rules()
    assert threshold("straggler", "late_share") == 0.5


def test_a_name_registered_twice_fails() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        estimator("test_half_of_x")(lambda m: None)
    assert ESTIMATORS["test_half_of_x"] is _half_of_x


def test_fixed_confidence_variant_severity_notes_and_domain_evidence() -> None:
    (rule,) = parse_rules({"rule": [RULE]})
    finding = evaluate_rule(rule, _scope(x=0.95, y=2.0))
    assert finding is not None
    assert (finding.id, finding.type, finding.title) == ("x_high/t0", "x_high", "x is 0.9 on k")
    assert finding.severity == "critical"  # the variant's
    assert (finding.confidence, finding.confidence_reason) == ("medium", "fixed because k says so")
    assert finding.expected_gain is not None and finding.expected_gain.high == pytest.approx(0.475)
    x = finding.evidence[0]
    assert x.metric == "x" and x.note == "a published source; measured by the counter X"
    assert [e.metric for e in finding.evidence] == ["x", "y", "x", "z as judged"]
    prefixed = check_rule(rule, _scope(x=0.6, y=2.0), prefix="ncu").finding
    assert prefixed is not None and (prefixed.id, prefixed.type) == ("ncu/x_high/t0", "ncu_x_high")
    assert prefixed.severity == "info"


def test_check_statuses_name_what_is_missing() -> None:
    (rule,) = parse_rules({"rule": [RULE]})
    assert check_rule(rule, _scope(y=1.0)).status == "not_evaluated"
    assert check_rule(rule, _scope(y=1.0)).missing == ("x: not measured",)
    assert check_rule(rule, _scope(x=0.1, y=1.0)).status == "passed"
    assert check_rule(rule, _scope(x=0.8, y=20.0)).status == "passed"  # a measured supporting fails
    fired = check_rule(rule, _scope(x=0.8))  # supporting y unmeasured: fires, names it
    assert fired.status == "fired" and fired.missing == ("y: collect it with --section Y",)
    assert fired.finding is not None and fired.finding.evidence[1].note == "not measured"
    other = Scope("thing", "t1", Location(), {"x": 1.0}, category="attention")
    assert check_rule(rule, other).status == "not_applicable"


def test_one_renderer_prints_findings_for_every_command() -> None:
    (rule,) = parse_rules({"rule": [RULE]})
    finding = evaluate_rule(rule, _scope(x=0.95, y=2.0))
    assert finding is not None
    out = io.StringIO()
    print_findings(Console(file=out, width=120), [finding])
    print_findings(Console(file=out, width=120), [finding], summary=True)
    text = out.getvalue()
    assert text.count("x is 0.9 on k") == 2 and "expected gain" in text and "→ lower x on k" in text
    assert "### [critical] x is 0.9 on k" in findings_markdown([finding])
    styles = [
        p for p in (SRC / "render").glob("*.py") if "SEVERITY_STYLE = " in p.read_text(encoding="utf-8")
    ]
    assert [p.name for p in styles] == ["findings.py"]


def test_no_spec_section_references_reach_users() -> None:
    pattern = re.compile(r"SPEC\s*§")
    hits = [
        p.relative_to(SRC)
        for p in SRC.rglob("*")
        if p.suffix in (".py", ".toml", ".html", ".j2", ".md")
        and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert hits == []
