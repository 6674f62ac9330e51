"""Findings with evidence and verification from a host report, plus the machine-readable handoff.

The advice text lives in ``data/host_advice.toml`` (optimisation patterns with sources), and so
do the rules that turn a scope's verdict (host/verdict.py) into findings: the shared rules engine
evaluates them on one scope per aggregate/phase built here. Findings whose evidence is not a
scope's verdict (gaps filled by copies or collectives, sync gaps, stragglers, diff regressions)
are built here from the report.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from infersight.host.results import Bucket, DiffReport, GapFill, HostReport, MetricValue, ScopeVerdict
from infersight.host.verdict import fill_detail
from infersight.rules.confidence import confidence_rule
from infersight.rules.estimators import estimator
from infersight.rules.evaluate import Scope, evaluate_rule
from infersight.rules.finding import Confidence, Evidence, ExpectedGain, Finding, Location
from infersight.rules.schema import Rule, parse_rules
from infersight.rules.values import Metrics, number

SYNC_API = re.compile(r"Synchroni[sz]e|^(cuda|cu|hip)Memcpy(?!.*Async)|EventSynchron")
MIN_STEPS_FOR_HIGH_CONFIDENCE = 3
# What the GPU runs in each bucket (methodology §3.2), and the bucket as a quantity.
BUCKET_WORDS = {"gpu": "kernels", "communication": "collectives", "copy": "copies", "host": "nothing"}
BUCKET_TITLES = {
    "gpu": "GPU kernel time (gpu bucket)",
    "communication": "communication no kernel hides",
    "copy": "copy time no kernel hides",
    "host": "host time (nothing on the GPU)",
}


@cache
def _advice() -> dict[str, Any]:
    text = resources.files("infersight").joinpath("data/host_advice.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@cache
def host_rules() -> tuple[Rule, ...]:
    """The [[rule]]s of host_advice.toml, with their patterns' advice and the [verify] commands."""
    return tuple(
        replace(rule, advice=tuple(patterns_for(rule.id)), verification=tuple(_advice()["verify"].values()))
        for rule in parse_rules(_advice(), drop_zero_gain=False)
    )


def patterns_for(finding_type: str) -> list[str]:
    """Advice lines (title: text) of the patterns that apply to a finding type."""
    return [f"{p['title']}: {p['advice']}" for p in _advice()["pattern"] if finding_type in p["when"]]


def _verify(trace: str) -> list[str]:
    return [str(cmd).format(trace=trace) for cmd in _advice()["verify"].values()]


def _evidence(m: MetricValue) -> Evidence:
    return Evidence(
        metric=f"{m.id} {m.name}",
        value=None if m.value is None else round(m.value, 4),
        threshold=m.threshold,
        comparison=m.comparison,
        note=m.na_reason or m.threshold_source,
    )


def _rule_scope(report: HostReport, scope: ScopeVerdict, trace: str, steady: int) -> Scope:
    """One host scope for the rules: the verdict's decisions as 1/0 flags, the M-values (for the
    estimators) and, as evidence, the M-metrics as the verdict judged them and the largest gaps."""
    m = {x.id: x for x in scope.metrics}
    metrics: Metrics = {
        "scope": scope.scope,
        "trace": trace,
        "steady_steps": steady,
        "host_bound": int(bool(scope.host_bound)),
        "host_prep_confirmed": int(bool(scope.host_prep_confirmed)),
        "launch_crossed": int(bool(m["M2"].crossed)),
        "nccl_crossed": int(bool(m["M5"].crossed)),
        **{x.id: x.value for x in scope.metrics},
    }
    fill, fill_evidence = _fill_metrics(scope)
    metrics.update(fill)
    evidence: dict[str, tuple[Evidence, ...]] = {x.id: (_evidence(x),) for x in scope.metrics}
    evidence["largest_gaps"] = tuple(_gap_evidence(report, scope))
    evidence["gap_fill"] = fill_evidence
    return Scope("host", scope.scope, _location(scope), metrics, evidence=evidence)


@estimator("host_prep_hidden")
def estimate_host_prep_hidden(m: Metrics) -> ExpectedGain | None:
    """Hiding half to all of the exposed host prep (M3b)."""
    exposed = number(m, "M3b") or 0.0
    return ExpectedGain(
        low=exposed * 0.5, high=exposed, basis="hiding half to all of the exposed host prep (M3b)"
    )


@estimator("exposed_launches")
def estimate_exposed_launches(m: Metrics) -> ExpectedGain | None:
    """Launch time while the GPU waits: M2 bounded by the host-attributable idle (M1h)."""
    exposed = min(number(m, "M2") or 0.0, number(m, "M1h") or 0.0)
    return ExpectedGain(
        low=exposed * 0.5,
        high=exposed,
        basis="launch time while the GPU waits, bounded by the host-attributable idle (M1h)",
    )


@estimator("host_idle")
def estimate_host_idle(m: Metrics) -> ExpectedGain | None:
    """A quarter to three quarters of the host-attributable idle (M1h)."""
    idle = number(m, "M1h") or 0.0
    return ExpectedGain(
        low=idle * 0.25,
        high=idle * 0.75,
        basis="a quarter to three quarters of the host-attributable idle (M1h) recovered",
    )


@estimator("gap_fill_hidden")
def estimate_gap_fill_hidden(m: Metrics) -> ExpectedGain | None:
    """A quarter to three quarters of the time the filling bucket (copy / communication) takes."""
    share = number(m, "fill_share")
    if share is None:
        return None
    return ExpectedGain(
        low=share * 0.25,
        high=share * 0.75,
        basis=f"a quarter to three quarters of the {m.get('fill_bucket')} time hidden",
    )


@confidence_rule("gap_fill_share")
def confidence_gap_fill_share(m: Metrics) -> tuple[Confidence, str]:
    """High when the filling bucket takes over half of the window, medium otherwise."""
    share = number(m, "fill_share") or 0.0
    reason = f"{m.get('fill_bucket')} time measured on the GPU timeline: {share:.0%} of the window"
    return ("high" if share > 0.5 else "medium"), reason


@confidence_rule("steady_steps")
def confidence_steady_steps(m: Metrics) -> tuple[Confidence, str]:
    """High with at least MIN_STEPS_FOR_HIGH_CONFIDENCE steady-state steps, low otherwise."""
    steady = int(number(m, "steady_steps") or 0)
    if steady < MIN_STEPS_FOR_HIGH_CONFIDENCE:
        return "low", f"only {steady} steady-state step(s): re-measure with more steps after warm-up"
    return "high", f"{steady} steady-state steps; thresholds crossed as listed"


def _sync_scope(report: HostReport, trace: str) -> Scope:
    """The run: how many of the largest gaps start while the host waits in a sync call (evidence:
    those gaps and their total) and how many scopes the verdict calls host-bound."""
    syncs = [g for g in report.drilldown.top_gaps if g.host_api and SYNC_API.search(g.host_api)]
    metrics: Metrics = {
        "trace": trace,
        "sync_gaps": len(syncs),
        "host_bound_scopes": sum(1 for s in report.scopes if s.applicable and s.host_bound),
    }
    rows = [
        Evidence(
            metric="gap",
            value=g.length_ns,
            unit="ns",
            note=f"device {g.device}; host in {g.host_api}; range {g.host_range or '-'}",
        )
        for g in syncs[:5]
    ] + [Evidence(metric="total of these gaps", value=sum(g.length_ns for g in syncs), unit="ns")]
    location = Location(scope="run", time_range_ns=(syncs[0].start_ns, syncs[0].end_ns) if syncs else None)
    return Scope("host_run", "run", location, metrics, evidence={"sync_gaps_list": tuple(rows)})


def _rank_scope(report: HostReport, rank: str, straggler: bool, trace: str) -> Scope:
    """One rank of a multi-rank set: whether it is the straggler; evidence: every rank's step."""
    rows = tuple(
        Evidence(
            metric=f"{x.rank} avg step",
            value=x.avg_step_ns,
            unit="ns",
            note=f"collective {x.collective_ns_per_step:.0f} ns/step"
            if x.collective_ns_per_step is not None
            else "",
        )
        for x in report.stragglers
    )
    metrics: Metrics = {"trace": trace, "rank": rank, "straggler": int(straggler)}
    return Scope("host_rank", rank, Location(scope="run"), metrics, evidence={"rank_steps": rows})


def _location(scope: ScopeVerdict) -> Location:
    return Location(scope="run") if scope.scope == "aggregate" else Location(scope="phase", phase=scope.scope)


def host_findings(report: HostReport) -> list[Finding]:
    """Findings for every host-bound scope, collective caveats, sync gaps and stragglers."""
    trace = report.traces[0] if report.traces else "TRACE"
    steady = sum(len(it.steady()) for it in report.iterations)
    findings: list[Finding] = []
    for scope in report.scopes:
        if not scope.applicable or scope.times is None:
            continue
        rule_scope = _rule_scope(report, scope, trace, steady)
        findings += [f for rule in host_rules() if (f := evaluate_rule(rule, rule_scope)) is not None]
    scopes = [_sync_scope(report, trace)] if report.scopes else []
    scopes += [_rank_scope(report, s.rank, s.straggler, trace) for s in report.stragglers]
    for rule_scope in scopes:
        findings += [f for rule in host_rules() if (f := evaluate_rule(rule, rule_scope)) is not None]
    return findings


def _gap_fill(scope: ScopeVerdict) -> tuple[Bucket, GapFill] | None:
    """When copies or collectives fill the gaps: the bucket and the window that shows it best."""
    bucket = scope.explained_by
    if bucket not in ("copy", "communication") or scope.host_bound:
        return None
    fill = scope.attribution
    if scope.activity_attribution is not None and (
        fill is None or scope.activity_attribution.share(bucket) > fill.share(bucket)
    ):
        fill = scope.activity_attribution
    return None if fill is None else (bucket, fill)


def _fill_metrics(scope: ScopeVerdict) -> tuple[Metrics, tuple[Evidence, ...]]:
    """The gap-fill metrics of a scope (fills_gaps_copy / fills_gaps_communication 1/0, the filling
    bucket's share and words) and the evidence rows: every bucket's share and the bucket's parts."""
    found = _gap_fill(scope)
    metrics: Metrics = {"fills_gaps_copy": 0, "fills_gaps_communication": 0}
    if found is None:
        return metrics, ()
    bucket, fill = found
    parts = fill.copy_by_direction if bucket == "copy" else fill.communication_by_collective
    evidence = [
        Evidence(metric=f"{name} share of the {fill.window} window", value=round(fill.share(name), 4))
        for name in ("gpu", "communication", "copy", "host")
    ] + [
        Evidence(metric=f"{bucket}: {label}", value=ns, unit="ns", note="time no compute kernel runs")
        for label, ns in list(parts.items())[:4]
    ]
    metrics.update(
        {
            f"fills_gaps_{bucket}": 1,
            "fill_bucket": bucket,
            "fill_share": fill.share(bucket),
            "fill_detail": fill_detail(fill, bucket),
        }
    )
    return metrics, tuple(evidence)


def _gap_evidence(report: HostReport, scope: ScopeVerdict) -> list[Evidence]:
    """The scope's largest gaps: length, what the host was in, and whether the launch came late."""
    gaps = [g for g in report.drilldown.top_gaps if scope.scope == "aggregate" or g.phase == scope.scope]
    out = []
    for g in gaps[:3]:
        late = g.launch_into_gap_ns is not None and g.launch_into_gap_ns > g.length_ns // 2
        out.append(
            Evidence(
                metric="idle gap",
                value=g.length_ns,
                unit="ns",
                note=(
                    f"device {g.device} at {g.start_ns} ns ({g.bucket_cause}); host API {g.host_api or '-'}; "
                    f"range {g.host_range or '-'}; "
                    + (
                        "next launch issued only during the gap: the host was late"
                        if late
                        else "launch was queued"
                    )
                ),
            )
        )
    return out


def host_handoff(report: HostReport) -> dict[str, object]:
    """A compact, stable summary an agent can act on without parsing the whole report."""
    return {
        "kind": "infersight.host",
        "verdict": report.verdict,
        "reason": report.verdict_reason,
        "explained_by": report.scopes[0].explained_by if report.scopes else None,
        "scopes": {
            s.scope: {
                "applicable": s.applicable,
                "host_bound": s.host_bound,
                "likely_cause": s.likely_cause,
                "explained_by": s.explained_by,
                "metrics": {m.id: m.value for m in s.metrics},
            }
            for s in report.scopes
        },
        "iterations": [{"method": it.method, "steps": len(it.steady())} for it in report.iterations],
        "largest_gaps": [
            {"ns": g.length_ns, "host_api": g.host_api, "host_range": g.host_range, "cause": g.bucket_cause}
            for g in report.drilldown.top_gaps[:3]
        ],
        "findings": [f.id for f in report.findings],
        "next_commands": _verify(report.traces[0] if report.traces else "TRACE"),
    }


def diff_findings(report: DiffReport) -> list[Finding]:
    """Environment and workload caveats first, then the regressed operations that carry the delta.

    Per-operation blame needs the same workload (methodology §4, diff): when the traces share too
    little kernel time, no operation is blamed. An operation's finding names the bucket its delta
    falls in; host-preparation advice only follows a delta that lands in the host bucket.
    """
    wall = next((r for r in report.summary if r.name == "step wall"), None)
    findings = _environment_findings(report)
    if report.similarity is not None and not report.similarity.comparable:
        return findings
    findings += _bucket_findings(report)
    for row in report.ops[:3]:
        if row.status not in ("REGRESSION", "NEW"):
            continue
        share = row.delta / wall.delta if wall is not None and wall.delta > 0 else None
        waits = row.bucket is not None and row.bucket != "host"
        where = (
            f", {row.bucket} bucket: the host waited while the GPU ran {BUCKET_WORDS.get(row.bucket or '')}"
            if waits
            else (f", {row.bucket} bucket" if row.bucket else "")
        )
        findings.append(
            Finding(
                id=f"diff_regression/{row.name}",
                type="diff_regression",
                title=f"{row.name}: +{row.delta:.1f} µs/step ({row.status}{where})",
                severity="info" if waits else "warning",
                location=Location(scope="range", range_name=row.name),
                evidence=[
                    Evidence(metric="baseline self time", value=row.baseline, unit="µs/step"),
                    Evidence(metric="target self time", value=row.target, unit="µs/step"),
                    Evidence(
                        metric="share of step wall delta", value=None if share is None else round(share, 3)
                    ),
                    Evidence(
                        metric="bucket of the delta",
                        value=row.bucket,
                        note="what the GPU did while the host was in this operation",
                    ),
                ],
                advice=(
                    patterns_for("host_prep_exposed")
                    if share is not None and share > 0.5 and row.bucket in (None, "host")
                    else []
                ),
                confidence="high" if report.target.steps >= MIN_STEPS_FOR_HIGH_CONFIDENCE else "low",
                confidence_reason=f"{report.baseline.steps} vs {report.target.steps} steady-state steps",
                verification=[f"infersight diff {report.baseline.trace} {report.target.trace}"],
                bucket=row.bucket,
            )
        )
    return findings


def _bucket_findings(report: DiffReport) -> list[Finding]:
    """When the wall grew and a non-host bucket carries most of it, say so before any operation."""
    d = report.decomposition
    if d is None or d.wall.delta <= 0:
        return []
    top = max(d.buckets, key=lambda r: r.delta)
    if top.name == "host" or top.delta <= 0:
        return []
    share = top.share_of_wall_delta or 0.0
    evidence = [
        Evidence(metric=f"{top.name} bucket delta", value=round(top.delta, 1), unit="µs/step"),
        Evidence(metric="share of step wall delta", value=round(share, 3)),
    ]
    detail = ""
    if top.name == "gpu" and d.gpu_categories:
        lead = [r for r in d.gpu_categories if r.delta > 0][:3]
        detail = ", led by " + ", ".join(f"{r.name.removeprefix('gpu:')} {r.delta:+,.1f} µs" for r in lead)
        evidence += [Evidence(metric=r.name, value=round(r.delta, 1), unit="µs/step") for r in lead]
    return [
        Finding(
            id=f"diff_bucket/{top.name}",
            type="diff_bucket",
            title=(
                f"{BUCKET_TITLES[top.name]} per step {top.delta:+,.1f} µs "
                f"({share:.0%} of the step wall delta){detail}"
            ),
            evidence=evidence,
            confidence="high" if report.target.steps >= MIN_STEPS_FOR_HIGH_CONFIDENCE else "low",
            confidence_reason=f"{report.baseline.steps} vs {report.target.steps} steady-state steps",
            verification=[f"infersight analyze {report.target.trace}"],
            bucket=top.name,
        )
    ]


def _environment_findings(report: DiffReport) -> list[Finding]:
    """A finding per caveat the reader must see before any per-operation delta."""
    out = []
    hardware = [c for c in report.environment_changes if c.hardware]
    if hardware:
        out.append(
            Finding(
                id="diff_environment/hardware",
                type="diff_environment",
                title=next((w for w in report.warnings if w.startswith("the comparison mixes hardware")), "")
                or "the comparison mixes hardware",
                evidence=[Evidence(metric=c.field, value=f"{c.baseline} -> {c.target}") for c in hardware],
                confidence="high",
                confidence_reason="read from the traces' device properties and distributed info",
                bucket="gpu",
            )
        )
    sim = report.similarity
    if sim is not None and not sim.comparable:
        out.append(
            Finding(
                id="diff_environment/different_workloads",
                type="diff_different_workloads",
                title=f"different workloads: {sim.shared_kernel_time:.0%} of kernel time on shared kernels",
                evidence=[
                    Evidence(
                        metric="shared kernel time",
                        value=round(sim.shared_kernel_time, 3),
                        threshold=sim.threshold,
                        comparison="<",
                        note=sim.threshold_source,
                    ),
                    Evidence(metric="shared kernel names", value=sim.shared_names),
                ],
                confidence="high",
                confidence_reason="kernel names of both traces compared after simplification",
            )
        )
    return out


def diff_handoff(report: DiffReport) -> dict[str, object]:
    """Machine-readable root cause of a diff."""
    return {
        "kind": "infersight.diff",
        "labels": list(report.labels),
        "root_cause": report.root_cause,
        "summary": {
            r.name: {"baseline": r.baseline, "target": r.target, "delta_pct": r.delta_pct}
            for r in report.summary
        },
        "warnings": list(report.warnings),
        "environment_changes": [c.model_dump() for c in report.environment_changes],
        "wall_delta_by_bucket": (
            {r.name: r.delta for r in report.decomposition.buckets} if report.decomposition else {}
        ),
        "shared_kernel_time": report.similarity.shared_kernel_time if report.similarity else None,
        "top_ops": [
            {"name": r.name, "status": r.status, "delta_us_per_step": r.delta, "bucket": r.bucket}
            for r in report.ops[:5]
        ],
    }
