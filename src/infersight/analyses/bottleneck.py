"""The run's primary bottleneck from the per-device attributions (docs/methodology.md §3.2).

The run's shares are the devices' bucket times summed over their summed windows (every GPU
counts by its time). The verdict is the largest bucket; its confidence follows the margin to the
second and drops when many devices disagree. The headline names what fills the bucket (the copy
direction, the collective, the operator category, what the host was doing), so the first line
already says where to look.
"""

from __future__ import annotations

from collections import defaultdict

from infersight.analyses.attribution import BUCKETS, confidence_of, rank_buckets, settings, shares_of
from infersight.analyses.results import DeviceAttribution, PhaseBottleneck, PrimaryBottleneck

BUCKET_WORDS = {
    "gpu": "GPU compute",
    "communication": "communication",
    "copy": "copy",
    "host": "host",
}
COPY_WORDS = {
    "HtoD": "host-to-device copies",
    "DtoH": "device-to-host copies",
    "DtoD": "device-to-device copies",
    "PtoP": "peer-to-peer copies",
    "UVM HtoD": "unified-memory migrations to the GPU",
    "UVM DtoH": "unified-memory migrations to the host",
    "memset": "memsets",
}


def primary_bottleneck(devices: list[DeviceAttribution]) -> PrimaryBottleneck | None:
    """The verdict over all devices; None when no device had GPU activity."""
    window = sum(d.window_ns for d in devices)
    if not devices or window <= 0:
        return None
    times = {b: int(sum(getattr(d.times_ns, b) for d in devices)) for b in BUCKETS}
    primary, second, margin = rank_buckets(times)
    shares = shares_of(times, window)
    disagreeing = sum(d.primary != primary for d in devices)
    confidence, reason = _confidence(margin, second, disagreeing, len(devices))
    return PrimaryBottleneck(
        bucket=primary,
        share=getattr(shares, primary),
        second=second,
        second_share=getattr(shares, second),
        margin=margin,
        confidence=confidence,
        confidence_reason=reason,
        headline=headline(primary, shares.model_dump(), devices),
        shares=shares,
        devices=len(devices),
        devices_disagreeing=disagreeing,
        phases=phase_bottlenecks(devices),
    )


def _confidence(margin: float, second: str, disagreeing: int, devices: int) -> tuple[str, str]:
    cfg = settings()["confidence"]
    level = confidence_of(margin)
    reason = (
        f"margin {margin:.2f} over {second} (high ≥ {float(cfg['high_margin']):.2f}, "
        f"medium ≥ {float(cfg['medium_margin']):.2f})"
    )
    if level == "low":
        reason += f": a near tie with {second}, both deserve a look"
    if devices and disagreeing / devices > float(cfg["max_disagreeing_devices"]) and level == "high":
        level = "medium"
        reason += f"; {disagreeing} of {devices} devices have another primary bucket"
    return level, reason


def phase_bottlenecks(devices: list[DeviceAttribution]) -> list[PhaseBottleneck]:
    """The verdict per phase, summing each phase's parts over devices."""
    windows: dict[str, int] = defaultdict(int)
    times: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    for device in devices:
        for part in device.phases:
            windows[part.phase] += part.window_ns
            for b in BUCKETS:
                times[part.phase][b] += int(getattr(part.times_ns, b))
    out = []
    for phase, window in windows.items():
        primary, _, margin = rank_buckets(times[phase])
        out.append(
            PhaseBottleneck(
                phase=phase,
                window_ns=window,
                shares=shares_of(times[phase], window),
                primary=primary,
                margin=margin,
                confidence=confidence_of(margin),
            )
        )
    return out


def headline(primary: str, shares: dict[str, float], devices: list[DeviceAttribution]) -> str:
    """One sentence: the bucket, its share, what fills it, and the next buckets."""
    what = _what_fills(primary, devices)
    others = ", ".join(
        f"{BUCKET_WORDS[b]} {shares[b]:.0%}"
        for b in sorted(BUCKETS, key=lambda b: -shares[b])
        if b != primary
    )
    scope = "each GPU's" if len(devices) > 1 else "the GPU's"
    verb = {
        "gpu": f"kernels run {shares['gpu']:.0%} of {scope} activity window",
        "communication": f"only collectives run for {shares['communication']:.0%} of {scope} activity window",
        "copy": f"copies alone fill {shares['copy']:.0%} of {scope} activity window",
        "host": f"the GPU has nothing to run for {shares['host']:.0%} of {scope} activity window",
    }[primary]
    return f"{BUCKET_WORDS[primary]} — {verb}{what}; {others}"


def _what_fills(primary: str, devices: list[DeviceAttribution]) -> str:
    """The largest contributor to the primary bucket, summed over devices."""
    if primary == "copy":
        totals: dict[str, int] = defaultdict(int)
        for d in devices:
            for c in d.copy_directions:
                totals[c.direction] += c.exposed_ns
        if totals:
            top = max(totals, key=lambda k: totals[k])
            bucket = sum(d.times_ns.copy for d in devices)
            share = totals[top] / bucket if bucket else 0.0
            return f" ({COPY_WORDS.get(top, top + ' copies')}: {min(share, 1.0):.0%} of it)"
    if primary == "communication":
        comm: dict[str, int] = defaultdict(int)
        for d in devices:
            for collective in d.collectives:
                comm[collective.collective] += collective.exposed_ns
        if comm:
            return f" (mostly {max(comm, key=lambda k: comm[k])})"
    if primary == "gpu":
        cats: dict[str, int] = defaultdict(int)
        for d in devices:
            for g in d.gpu_categories:
                cats[g.category] += g.kernel_time_ns
        total = sum(cats.values())
        if total:
            top = max(cats, key=lambda k: cats[k])
            return f" ({top} {cats[top] / total:.0%} of kernel time)"
    if primary == "host":
        return _host_words(devices)
    return ""


def _host_words(devices: list[DeviceAttribution]) -> str:
    parts = {"launch": 0, "sync": 0, "other_api": 0, "no_api": 0}
    known = False
    for d in devices:
        h = d.host
        if h.no_api_ns is None:
            continue
        known = True
        parts["launch"] += h.launch_ns or 0
        parts["sync"] += h.sync_ns or 0
        parts["other_api"] += h.other_api_ns or 0
        parts["no_api"] += h.no_api_ns
    total = sum(parts.values())
    if not known or total <= 0:
        return ""
    top = max(parts, key=lambda k: parts[k])
    words = {
        "launch": "inside kernel-launch calls",
        "sync": "inside synchronising calls",
        "other_api": "inside other CUDA API calls",
        "no_api": "in no CUDA call: Python / framework / scheduler",
    }[top]
    return f" ({parts[top] / total:.0%} of it {words})"
