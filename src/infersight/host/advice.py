"""Findings with evidence and verification from a host report, plus the machine-readable handoff.

The advice text lives in ``data/host_advice.toml`` (optimisation patterns with sources); this
module only decides which findings the measured numbers support and attaches the patterns.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from infersight.host.results import DiffReport, HostReport, MetricValue, ScopeVerdict
from infersight.host.verdict import fill_detail
from infersight.rules.finding import Confidence, Evidence, ExpectedGain, Finding, Location, Severity

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


def _location(scope: ScopeVerdict) -> Location:
    return Location(scope="run") if scope.scope == "aggregate" else Location(scope="phase", phase=scope.scope)


def _confidence(report: HostReport) -> tuple[Confidence, str]:
    steady = sum(len(it.steady()) for it in report.iterations)
    if steady < MIN_STEPS_FOR_HIGH_CONFIDENCE:
        return "low", f"only {steady} steady-state step(s): re-measure with more steps after warm-up"
    return "high", f"{steady} steady-state steps; thresholds crossed as listed"


def host_findings(report: HostReport) -> list[Finding]:
    """Findings for every host-bound scope, collective caveats, sync gaps and stragglers."""
    trace = report.traces[0] if report.traces else "TRACE"
    confidence, why = _confidence(report)
    findings: list[Finding] = []
    for scope in report.scopes:
        if not scope.applicable or scope.times is None:
            continue
        m = {x.id: x for x in scope.metrics}
        filled = _filled_finding(scope, trace)
        if filled is not None:
            findings.append(filled)
        if scope.host_prep_confirmed and scope.host_bound:
            exposed = m["M3b"].value or 0.0
            findings.append(
                _finding(
                    "host_prep_exposed",
                    scope,
                    "Host input preparation is exposed on the GPU timeline",
                    [m["M3a"], m["M3b"], m["M3c"], m["M1"]],
                    trace,
                    confidence,
                    why,
                    ExpectedGain(
                        low=exposed * 0.5,
                        high=exposed,
                        basis="hiding half to all of the exposed host prep (M3b)",
                    ),
                )
            )
        if m["M2"].crossed and scope.host_bound:  # launches the GPU waits for (M1h or M2e crossed)
            ratio = m["M2"].value or 0.0
            findings.append(
                _finding(
                    "launch_overhead",
                    scope,
                    "Kernel launch calls take a large share of the wall time",
                    [m["M2"], m["M2e"], m["M1h"]],
                    trace,
                    confidence,
                    why,
                    ExpectedGain(
                        low=min(ratio, m["M1h"].value or 0.0) * 0.5,
                        high=min(ratio, m["M1h"].value or 0.0),
                        basis="launch time while the GPU waits, bounded by the host-attributable idle (M1h)",
                    ),
                )
            )
        if scope.host_bound and not scope.host_prep_confirmed and not m["M2"].crossed:
            idle = m["M1h"].value or 0.0
            finding = _finding(
                "host_idle_gaps",
                scope,
                "The GPU idles between kernels while the host works",
                [m["M1"], m["M1h"], m["M4"], m["M3c"]],
                trace,
                "medium",
                "idle is measured; its host cause is inferred from the largest gaps",
                ExpectedGain(
                    low=idle * 0.25,
                    high=idle * 0.75,
                    basis="a quarter to three quarters of the host-attributable idle (M1h) recovered",
                ),
            )
            finding.evidence += _gap_evidence(report, scope)
            findings.append(finding)
        if m["M5"].crossed:
            findings.append(
                _finding(
                    "nccl_heavy",
                    scope,
                    "Collectives dominate GPU active time (M5 caveat)",
                    [m["M5"], m["M1"]],
                    trace,
                    "medium",
                    "collective wait cannot be told from transfer time",
                    None,
                    severity="info",
                )
            )
    syncs = [g for g in report.drilldown.top_gaps if g.host_api and SYNC_API.search(g.host_api)]
    if syncs and any(s.applicable and s.host_bound for s in report.scopes):
        total = sum(g.length_ns for g in syncs)
        findings.append(
            Finding(
                id="host_sync_gaps/run",
                type="host_sync_gaps",
                title=f"{len(syncs)} of the largest GPU gaps start while the host waits in a sync call",
                location=Location(scope="run", time_range_ns=(syncs[0].start_ns, syncs[0].end_ns)),
                evidence=[
                    Evidence(
                        metric="gap",
                        value=g.length_ns,
                        unit="ns",
                        note=f"device {g.device}; host in {g.host_api}; range {g.host_range or '-'}",
                    )
                    for g in syncs[:5]
                ]
                + [Evidence(metric="total of these gaps", value=total, unit="ns")],
                advice=patterns_for("host_sync_gaps"),
                confidence="medium",
                confidence_reason="the call in progress at the gap start is a synchronisation",
                verification=_verify(trace),
            )
        )
    for s in report.stragglers:
        if s.straggler:
            findings.append(
                Finding(
                    id=f"straggler_rank/{s.rank}",
                    type="straggler_rank",
                    title=f"{s.rank} is the straggler: longest steps, least time waiting in collectives",
                    location=Location(scope="run"),
                    evidence=[
                        Evidence(
                            metric=f"{x.rank} avg step",
                            value=x.avg_step_ns,
                            unit="ns",
                            note=f"collective {x.collective_ns_per_step:.0f} ns/step"
                            if x.collective_ns_per_step is not None
                            else "",
                        )
                        for x in report.stragglers
                    ],
                    advice=patterns_for("straggler_rank"),
                    confidence="medium",
                    confidence_reason="per-rank durations only (clocks may be offset)",
                    verification=_verify(trace),
                )
            )
    return findings


def _filled_finding(scope: ScopeVerdict, trace: str) -> Finding | None:
    """When copies or collectives fill the gaps: say so, with the bucket's advice, not host advice."""
    bucket = scope.explained_by
    if bucket not in ("copy", "communication") or scope.host_bound:
        return None
    fill = scope.attribution
    if scope.activity_attribution is not None and (
        fill is None or scope.activity_attribution.share(bucket) > fill.share(bucket)
    ):
        fill = scope.activity_attribution
    if fill is None:
        return None
    kind = f"{bucket}_fills_gaps"
    parts = fill.copy_by_direction if bucket == "copy" else fill.communication_by_collective
    evidence = [
        Evidence(metric=f"{name} share of the {fill.window} window", value=round(fill.share(name), 4))
        for name in ("gpu", "communication", "copy", "host")
    ] + [
        Evidence(metric=f"{bucket}: {label}", value=ns, unit="ns", note="time no compute kernel runs")
        for label, ns in list(parts.items())[:4]
    ]
    share = fill.share(bucket)
    return Finding(
        id=f"{kind}/{scope.scope}",
        type=kind,
        title=f"{fill_detail(fill, bucket)} fill the GPU's gaps: {bucket}-bound, not host ({scope.scope})",
        severity="warning",
        location=_location(scope),
        evidence=evidence,
        advice=patterns_for(kind),
        expected_gain=ExpectedGain(
            low=share * 0.25,
            high=share * 0.75,
            basis=f"a quarter to three quarters of the {bucket} time hidden",
        ),
        confidence="high" if share > 0.5 else "medium",
        confidence_reason=f"{bucket} time measured on the GPU timeline: {share:.0%} of the window",
        verification=_verify(trace),
    )


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


def _finding(
    kind: str,
    scope: ScopeVerdict,
    title: str,
    metrics: list[MetricValue],
    trace: str,
    confidence: Confidence,
    why: str,
    gain: ExpectedGain | None,
    severity: Severity = "warning",
) -> Finding:
    return Finding(
        id=f"{kind}/{scope.scope}",
        type=kind,
        title=f"{title} ({scope.scope})",
        severity=severity,
        location=_location(scope),
        evidence=[_evidence(x) for x in metrics],
        advice=patterns_for(kind),
        expected_gain=gain,
        confidence=confidence,
        confidence_reason=why,
        verification=_verify(trace),
    )


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
