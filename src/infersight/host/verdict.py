"""YES/NO host-overhead verdicts per scope and overall (methodology §4).

A scope is host-bound when the GPU idles (M1), is under-utilised (M4), spends too long in launch
calls (M2), or host preparation is confirmed — M3b *and* M3c cross, i.e. the exposed host prep
is both a visible share of the wall time and most of the idle time. M5 never changes the
verdict: it is a caveat (busy NCCL kernels may be waiting for other ranks). The overall verdict
is the aggregate's, raised (never lowered) by any phase: a context-only stall diluted by long
generation phases must still surface.
"""

from __future__ import annotations

from infersight.host.results import MetricValue, Scope, ScopeTimes, ScopeVerdict, Verdict


def _fmt(m: MetricValue) -> str:
    value = "n/a" if m.value is None else f"{m.value:.3f}"
    return f"{m.id} {m.name} {value} {m.comparison} {m.threshold:g}"


def judge_scope(scope: Scope, times: ScopeTimes, metrics: list[MetricValue]) -> ScopeVerdict:
    """The verdict, signals, likely cause and caveats of one scope."""
    by_id = {m.id: m for m in metrics}
    crossed = {k for k, m in by_id.items() if m.crossed}
    m3_known = by_id["M3b"].value is not None and by_id["M3c"].value is not None
    prep_confirmed = ("M3b" in crossed and "M3c" in crossed) if m3_known else None
    signals = [_fmt(by_id[k]) for k in ("M1", "M4", "M2") if k in crossed]
    if prep_confirmed:
        signals.append(f"host prep confirmed: {_fmt(by_id['M3b'])} and {_fmt(by_id['M3c'])}")
    host_bound = bool(signals)
    caveats: list[str] = []
    if "M5" in crossed and times.wall_ns > 0:
        compute_util = (times.busy_ns - times.nccl_busy_ns) / times.wall_ns
        caveats.append(
            f"{_fmt(by_id['M5'])}: collective kernels that wait for other ranks count as busy, so the idle "
            f"ratio understates the stall; utilisation without NCCL kernels is {compute_util:.3f}"
        )
    if not m3_known:
        reason = by_id["M3b"].na_reason or by_id["M3c"].na_reason
        caveats.append(f"M3 host prep not applicable: {reason}")
    elif "M3a" in crossed and not prep_confirmed:
        caveats.append(
            f"{_fmt(by_id['M3a'])}: host prep is mostly exposed but too small to explain the idle time"
        )
    if "M2" in crossed and "M1" not in crossed and by_id["M1"].value is not None:
        caveats.append(
            f"{_fmt(by_id['M2'])} while the GPU idles only {by_id['M1'].value:.3f}: most launch time "
            "overlaps GPU work, so fewer launches gain at most the idle time"
        )
    if by_id["M2"].value is None:
        caveats.append(f"M2 launch overhead not applicable: {by_id['M2'].na_reason}")
    return ScopeVerdict(
        scope=scope,
        times=times,
        metrics=metrics,
        host_bound=host_bound,
        host_prep_confirmed=prep_confirmed,
        signals=signals,
        likely_cause=_likely_cause(crossed, prep_confirmed, host_bound),
        caveats=caveats,
    )


def _likely_cause(crossed: set[str], prep_confirmed: bool | None, host_bound: bool) -> str:
    if prep_confirmed:
        return "host input preparation runs while the GPU idles (exposed host prep)"
    if "M2" in crossed:
        return "kernel launch overhead: many small launches (CUDA graphs / fusion)"
    if host_bound and "M5" in crossed:
        return "GPU idle next to heavy collectives: communication waits or a straggler rank, not only host"
    if host_bound:
        return "GPU idle not explained by a host-prep range: see the largest gaps and what the host did then"
    if "M5" in crossed:
        return "GPU busy, but largely in collectives: check communication overlap and stragglers"
    return "the GPU is kept busy: host overhead is not the bottleneck"


def overall_verdict(scopes: list[ScopeVerdict]) -> tuple[Verdict, str]:
    """YES when the aggregate or any applicable phase is host-bound, with the reason.

    N/A when the aggregate itself has too little data (a phase cannot have more).
    """
    aggregate = next(s for s in scopes if s.scope == "aggregate")
    if not aggregate.applicable:
        return "N/A", f"no verdict: {aggregate.na_reason}"
    raising = [s for s in scopes if s.scope != "aggregate" and s.applicable and s.host_bound]
    if aggregate.host_bound:
        reason = f"aggregate host-bound ({'; '.join(aggregate.signals)})"
        if raising:
            reason += f"; also the {', '.join(s.scope for s in raising)} phase"
        return "YES", reason
    if raising:
        parts = [f"{s.scope} phase host-bound ({'; '.join(s.signals)})" for s in raising]
        return "YES", "aggregate NO, raised to YES by the " + "; ".join(parts)
    return "NO", "no scope crosses a host-overhead threshold"
