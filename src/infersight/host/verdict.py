"""YES/NO host-overhead verdicts per scope and overall (methodology §4 verdict rule).

The host is the bottleneck only when the GPU is seen waiting for it. M1 counts idle between
kernels, which a copy or a collective may fill, and M2 counts launch time, which usually runs
while the GPU still works through its queue. So (rule and limits in ``data/host_thresholds.toml``
``[verdict]``):

* YES needs a host signal — M1h, the share of the window with *nothing* on the GPU — or launch
  overhead M2 *together with* a sign the GPU waits (M1h, or M2e: launch time while the GPU is
  empty), or confirmed host prep (M3b and M3c);
* and no other bucket fills the gaps: when copies or communication take a bottleneck-sized share
  of the window and most of the time without compute, the answer is NO and names that bucket
  (``explained_by``), whatever the idle ratio says.

M4 (utilisation) is M1 seen from the other side and M5 (collectives) a caveat: neither decides.
The overall verdict is the aggregate's, raised (never lowered) by a host-bound phase: a
context-only stall diluted by long generation phases must still surface.
"""

from __future__ import annotations

from typing import Any

from infersight.analyses.bottleneck import COPY_WORDS
from infersight.host.results import Bucket, GapFill, MetricValue, Scope, ScopeTimes, ScopeVerdict, Verdict

BUCKET_WORDS: dict[str, str] = {
    "gpu": "compute kernels",
    "communication": "collective (communication) kernels",
    "copy": "copies",
    "host": "nothing on the GPU (host)",
}
# one vocabulary of copy directions for every verdict (analyze's headline and host's reason)
DIRECTION_WORDS: dict[str, str] = {
    **COPY_WORDS,
    "HtoH": "host-to-host copies",
    "other": "copies of kind 'other'",
}
NEXT_COMMAND = {"copy": "infersight overlap", "communication": "infersight overlap"}


def _fmt(m: MetricValue) -> str:
    value = "n/a" if m.value is None else f"{m.value:.3f}"
    return f"{m.id} {m.name} {value} {m.comparison} {m.threshold:g}"


def fill_detail(fill: GapFill, bucket: Bucket) -> str:
    """The bucket in words with its leading part: 'host-to-device copies', 'AllReduce kernels'."""
    if bucket == "copy" and fill.copy_by_direction:
        top = next(iter(fill.copy_by_direction))
        return DIRECTION_WORDS.get(top, f"copies ({top})")
    if bucket == "communication" and fill.communication_by_collective:
        return f"{next(iter(fill.communication_by_collective))} collective kernels"
    return BUCKET_WORDS[bucket]


def filling_bucket(fill: GapFill, limit: MetricValue, rule: dict[str, Any]) -> Bucket | None:
    """Copy or communication when it fills the gaps: a bottleneck-sized share of the window
    (crossing the M1h limit) and at least ``explained_share`` of the time no compute runs."""
    without_compute = fill.communication_ns + fill.copy_ns + fill.host_ns
    if without_compute <= 0:
        return None
    share = float(rule["explained_share"])
    best: Bucket | None = None
    for bucket in ("copy", "communication"):
        part = fill.copy_ns if bucket == "copy" else fill.communication_ns
        crosses = part / fill.window_ns > limit.threshold if fill.window_ns > 0 else False
        if (
            crosses
            and part / without_compute >= share
            and (best is None or fill.share(bucket) > fill.share(best))
        ):
            best = bucket
    return best


def host_signals(by_id: dict[str, MetricValue], rule: dict[str, Any]) -> tuple[list[str], bool | None]:
    """(signals that point at the host, host prep confirmed) under the data-driven rule."""
    crossed = {k for k, m in by_id.items() if m.crossed}
    signals = [_fmt(by_id[k]) for k in rule["host_signals"] if k in crossed]
    launch = str(rule["launch_signal"])
    waits = [k for k in rule["launch_needs_any"] if k in crossed]
    if launch in crossed and waits:
        signals.append(f"{_fmt(by_id[launch])} with the GPU waiting ({_fmt(by_id[waits[0]])})")
    prep = list(rule["prep_signals"])
    prep_known = all(by_id[k].value is not None for k in prep)
    confirmed = all(k in crossed for k in prep) if prep_known else None
    if confirmed:
        signals.append("host prep confirmed: " + " and ".join(_fmt(by_id[k]) for k in prep))
    return signals, confirmed


def judge_scope(
    scope: Scope,
    times: ScopeTimes,
    metrics: list[MetricValue],
    fill: GapFill,
    rule: dict[str, Any],
    activity: GapFill | None = None,
) -> ScopeVerdict:
    """The verdict, signals, the bucket that explains the scope, likely cause and caveats.

    ``fill`` covers the metrics' window (kernel span or steps): the host is judged there, as M1
    is. ``activity`` (aggregate only) adds the copies before the first and after the last kernel:
    it can only name another bucket (a copy-bound run whose copies surround its kernels), never
    make the host the cause.
    """
    by_id = {m.id: m for m in metrics}
    signals, prep_confirmed = host_signals(by_id, rule)
    filled_by = filling_bucket(fill, by_id["M1h"], rule)
    naming = fill
    if filled_by is None and activity is not None:
        filled_by = filling_bucket(activity, by_id["M1h"], rule)
        naming = activity if filled_by is not None else fill
    host_bound = bool(signals) and filled_by is None
    explained_by: Bucket = "host" if host_bound else (filled_by or _largest_not_host(naming))
    caveats = _caveats(by_id, times, naming, signals, filled_by, rule)
    return ScopeVerdict(
        scope=scope,
        times=times,
        metrics=metrics,
        host_bound=host_bound,
        host_prep_confirmed=prep_confirmed,
        signals=signals if host_bound else [],
        attribution=fill,
        activity_attribution=activity,
        explained_by=explained_by,
        likely_cause=_likely_cause(by_id, prep_confirmed, host_bound, explained_by, naming),
        caveats=caveats,
    )


def _largest_not_host(fill: GapFill) -> Bucket:
    """The largest of gpu, communication and copy: what explains a scope that is not host-bound."""
    order: tuple[Bucket, ...] = ("gpu", "communication", "copy")
    return max(order, key=fill.share)


def _caveats(
    by_id: dict[str, MetricValue],
    times: ScopeTimes,
    fill: GapFill,
    signals: list[str],
    filled_by: Bucket | None,
    rule: dict[str, Any],
) -> list[str]:
    crossed = {k for k, m in by_id.items() if m.crossed}
    caveats: list[str] = []
    if filled_by is not None:
        caveats.append(_filled_caveat(fill, filled_by, by_id, signals))
    elif "M1" in crossed and "M1h" not in crossed and by_id["M1h"].value is not None:
        caveats.append(
            f"{_fmt(by_id['M1'])}, but copies fill {fill.copy_ns / max(times.idle_ns, 1):.0%} of that idle "
            f"time: only {by_id['M1h'].value:.3f} of the window has nothing on the GPU"
        )
    if "M5" in crossed and times.wall_ns > 0:
        compute_util = (times.busy_ns - times.nccl_busy_ns) / times.wall_ns
        caveats.append(
            f"{_fmt(by_id['M5'])}: collective kernels that wait for other ranks count as busy, so the idle "
            f"ratio understates the stall; utilisation without NCCL kernels is {compute_util:.3f}"
        )
    caveats += _prep_caveats(by_id)
    launch = str(rule["launch_signal"])
    if launch in crossed and not any(k in crossed for k in rule["launch_needs_any"]):
        exposed = by_id["M2e"].value
        caveats.append(
            f"{_fmt(by_id[launch])}, but the launches overlap GPU work: exposed launch M2e "
            f"{'n/a' if exposed is None else f'{exposed:.3f}'} and host-attributable idle "
            f"M1h {by_id['M1h'].value or 0.0:.3f} stay under their limits, so the GPU does not wait for "
            "them and fewer launches would gain at most the idle time"
        )
    if by_id[launch].value is None:
        caveats.append(f"M2 launch overhead not applicable: {by_id[launch].na_reason}")
    return caveats


def _filled_caveat(fill: GapFill, bucket: Bucket, by_id: dict[str, MetricValue], signals: list[str]) -> str:
    without_compute = fill.communication_ns + fill.copy_ns + fill.host_ns
    part = fill.copy_ns if bucket == "copy" else fill.communication_ns
    text = (
        f"{fill_detail(fill, bucket)} fill {part / without_compute:.0%} of the time no compute kernel runs "
        f"({fill.share(bucket):.0%} of the window): the scope is {bucket}-bound, not host-bound — "
        f"see `{NEXT_COMMAND[bucket]}`"
    )
    if signals:
        text += f"; the host signals ({'; '.join(signals)}) are secondary to it"
    return text


def _prep_caveats(by_id: dict[str, MetricValue]) -> list[str]:
    m3_known = by_id["M3b"].value is not None and by_id["M3c"].value is not None
    if not m3_known:
        reason = by_id["M3b"].na_reason or by_id["M3c"].na_reason
        return [f"M3 host prep not applicable: {reason}"]
    if by_id["M3a"].crossed and not (by_id["M3b"].crossed and by_id["M3c"].crossed):
        return [f"{_fmt(by_id['M3a'])}: host prep is mostly exposed but too small to explain the idle time"]
    return []


def _likely_cause(
    by_id: dict[str, MetricValue],
    prep_confirmed: bool | None,
    host_bound: bool,
    explained_by: Bucket,
    fill: GapFill,
) -> str:
    if host_bound and prep_confirmed:
        return "host input preparation runs while the GPU idles (exposed host prep)"
    if host_bound and by_id["M2"].crossed:
        return "kernel launch overhead the GPU waits for: many small launches (CUDA graphs / fusion)"
    if host_bound and by_id["M5"].crossed:
        return "GPU idle next to heavy collectives: communication waits or a straggler rank, not only host"
    if host_bound:
        return "GPU idle not explained by a host-prep range: see the largest gaps and what the host did then"
    if explained_by in ("copy", "communication"):
        return (
            f"{explained_by}-bound: {fill_detail(fill, explained_by)} fill the time between compute kernels "
            f"({fill.share(explained_by):.0%} of the {fill.window} window), not the host"
        )
    if by_id["M5"].crossed:
        return "GPU busy, but largely in collectives: check communication overlap and stragglers"
    return (
        f"the GPU is kept busy ({fill.share('gpu'):.0%} of the window in compute kernels, "
        f"{fill.share('communication'):.0%} communication, {fill.share('copy'):.0%} copies, "
        f"{fill.share('host'):.0%} nothing on the GPU): host overhead is not the bottleneck"
    )


def overall_verdict(scopes: list[ScopeVerdict]) -> tuple[Verdict, str]:
    """YES when the aggregate or any applicable phase is host-bound, with the reason.

    N/A when the aggregate itself has too little data (a phase cannot have more). A NO names the
    bucket that explains the run, so "not host" never reads as "nothing to fix".
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
    return "NO", _no_reason(aggregate)


def _no_reason(aggregate: ScopeVerdict) -> str:
    """The bucket that explains a NO, in words: copy/communication with their share, else compute."""
    fill, bucket = aggregate.attribution, aggregate.explained_by
    if fill is None or bucket is None:
        return "no scope crosses a host-overhead threshold"
    activity = aggregate.activity_attribution
    if (
        bucket in ("copy", "communication")
        and activity is not None
        and fill.share(bucket) < activity.share(bucket)
    ):
        fill = activity  # the copies around the kernels are what names it
    if bucket in ("copy", "communication"):
        without_compute = fill.communication_ns + fill.copy_ns + fill.host_ns
        part = fill.copy_ns if bucket == "copy" else fill.communication_ns
        return (
            f"{bucket}-bound, not host-bound: {fill_detail(fill, bucket)} fill "
            f"{part / max(without_compute, 1):.0%} of the time no compute kernel runs "
            f"({fill.share(bucket):.0%} of the {fill.window} window; nothing on the GPU "
            f"{fill.share('host'):.0%}); see `{NEXT_COMMAND[bucket]}`"
        )
    return (
        f"the host is not the bottleneck: {fill_detail(fill, bucket)} fill {fill.share(bucket):.0%} "
        f"of the {fill.window} window (communication {fill.share('communication'):.0%}, "
        f"copies {fill.share('copy'):.0%}, nothing on the GPU {fill.share('host'):.0%})"
    )
