"""Flat rule metrics from the wall-time attribution, so rules can follow the verdict.

The rules engine compares numbers; this module turns a device's (or the run's, or a phase's)
attribution into the metric names ``data/rules.toml`` uses: bucket shares and times, whether a
bucket is the primary one (1/0), and what fills the copy, communication, gpu and host buckets.
"""

from __future__ import annotations

from collections import defaultdict

from infersight.analyses.attribution import BUCKETS, rank_buckets
from infersight.analyses.results import DeviceAttribution, PhaseBottleneck

MetricValue = float | int | str | None
Metrics = dict[str, MetricValue]
UVM_PREFIX = "UVM"
HOST_DIRECTIONS = ("HtoD", "DtoH", "UVM HtoD", "UVM DtoH")
# Breakdown metrics are always present (None when the scope has nothing of that kind), so a rule
# that lists one as evidence reports it as not applicable instead of missing.
TOP_COPY_KEYS = (
    "top_copy_direction",
    "top_copy_exposed_ns",
    "top_copy_bytes",
    "top_copy_bandwidth_gb_per_s",
    "top_copy_link",
    "top_copy_link_ratio",
    "top_copy_is_host_link",
)
HOST_KEYS = (
    "host_no_api_ns",
    "host_sync_ns",
    "host_launch_ns",
    "host_no_api_share",
    "host_sync_share",
    "host_launch_share",
    "host_top_range",
)


def attribution_metrics(devices: list[DeviceAttribution]) -> Metrics:
    """Metrics of one device (a one-item list) or of several summed (the run total)."""
    window = sum(d.window_ns for d in devices)
    if not devices or window <= 0:
        return {}
    times = {b: int(sum(getattr(d.times_ns, b) for d in devices)) for b in BUCKETS}
    metrics = _bucket_metrics(times, window)
    metrics.update(_copy_metrics(devices, window))
    metrics.update(_comm_metrics(devices))
    metrics.update(_gpu_metrics(devices))
    metrics.update(_host_metrics(devices, times["host"]))
    return metrics


def phase_attribution_metrics(phase: PhaseBottleneck) -> Metrics:
    """Bucket metrics of one phase over all devices (no breakdowns: those are per device)."""
    if phase.window_ns <= 0:
        return {}
    times = {b: round(getattr(phase.shares, b) * phase.window_ns) for b in BUCKETS}
    return _bucket_metrics(times, phase.window_ns)


def _bucket_metrics(times: dict[str, int], window: int) -> Metrics:
    primary, second, margin = rank_buckets(times)
    metrics: Metrics = {
        "activity_window_ns": window,
        "primary_bucket": primary,
        "second_bucket": second,
        "primary_margin": margin,
    }
    for b in BUCKETS:
        metrics[f"{b}_share"] = times[b] / window
        metrics[f"{b}_bucket_ns"] = times[b]
        metrics[f"{b}_is_primary"] = 1 if b == primary else 0
    not_gpu = times["host"] + times["copy"] + times["communication"]
    # Of the time no compute kernel runs, the part nothing runs at all: the host's share of the
    # waiting. Host-overhead rules need it to be the larger part (copies or collectives otherwise).
    metrics["host_share_of_waiting"] = times["host"] / not_gpu if not_gpu > 0 else None
    return metrics


def _copy_metrics(devices: list[DeviceAttribution], window: int) -> Metrics:
    exposed: dict[str, int] = defaultdict(int)
    nbytes: dict[str, int] = defaultdict(int)
    busy: dict[str, int] = defaultdict(int)
    pageable = uvm_ns = uvm_count = 0
    link: dict[str, tuple[str | None, float | None]] = {}
    for d in devices:
        for c in d.copy_directions:
            exposed[c.direction] += c.exposed_ns
            nbytes[c.direction] += c.bytes
            busy[c.direction] += c.total_ns
            pageable += c.pageable_count
            link.setdefault(c.direction, (c.link, c.link_gb_per_s))
            if c.direction.startswith(UVM_PREFIX):
                uvm_ns += c.total_ns
                uvm_count += c.count
    metrics: Metrics = {
        **dict.fromkeys(TOP_COPY_KEYS),
        "pageable_copy_count": pageable,
        "uvm_copy_ns": uvm_ns,
        "uvm_copy_count": uvm_count,
        "uvm_copy_share": uvm_ns / window,
    }
    if not exposed:
        return metrics
    top = max(exposed, key=lambda k: (exposed[k], busy[k]))
    name, peak = link[top]
    bandwidth = nbytes[top] / busy[top] if busy[top] > 0 and nbytes[top] > 0 else None
    metrics.update(
        {
            "top_copy_direction": top,
            "top_copy_exposed_ns": exposed[top],
            "top_copy_bytes": nbytes[top],
            "top_copy_bandwidth_gb_per_s": bandwidth,
            "top_copy_link": name,
            "top_copy_link_ratio": bandwidth / peak if bandwidth is not None and peak else None,
            "top_copy_is_host_link": 1 if top in HOST_DIRECTIONS else 0,
        }
    )
    return metrics


def _comm_metrics(devices: list[DeviceAttribution]) -> Metrics:
    exposed: dict[str, int] = defaultdict(int)
    total = 0
    for d in devices:
        for c in d.collectives:
            exposed[c.collective] += c.exposed_ns
            total += c.total_ns
    if not exposed:
        return {
            "comm_kernel_ns": 0,
            "top_collective": None,
            "top_collective_exposed_ns": None,
            "comm_hidden_ratio": None,
        }
    top = max(exposed, key=lambda k: exposed[k])
    return {
        "comm_kernel_ns": total,
        "top_collective": top,
        "top_collective_exposed_ns": exposed[top],
        "comm_hidden_ratio": 1.0 - sum(exposed.values()) / total if total > 0 else None,
    }


def _gpu_metrics(devices: list[DeviceAttribution]) -> Metrics:
    totals: dict[str, int] = defaultdict(int)
    for d in devices:
        for g in d.gpu_categories:
            totals[g.category] += g.kernel_time_ns
    grand = sum(totals.values())
    if not grand:
        return {"top_category": None, "top_category_share": None, "top_categories": None}
    ranked = sorted(totals, key=lambda k: -totals[k])
    return {
        "top_category": ranked[0],
        "top_category_share": totals[ranked[0]] / grand,
        "top_categories": ", ".join(f"{c} {totals[c] / grand:.0%}" for c in ranked[:3]),
    }


def _host_metrics(devices: list[DeviceAttribution], host_ns: int) -> Metrics:
    known = [d.host for d in devices if d.host.no_api_ns is not None]
    if not known or host_ns <= 0:
        return dict.fromkeys(HOST_KEYS)
    no_api = sum(h.no_api_ns or 0 for h in known)
    sync = sum(h.sync_ns or 0 for h in known)
    launch = sum(h.launch_ns or 0 for h in known)
    ranges = [r for d in devices for r in d.host.ranges]
    top_range = max(ranges, key=lambda r: r.host_ns).name if ranges else None
    return {
        "host_no_api_ns": no_api,
        "host_sync_ns": sync,
        "host_launch_ns": launch,
        "host_no_api_share": no_api / host_ns,
        "host_sync_share": sync / host_ns,
        "host_launch_share": launch / host_ns,
        "host_top_range": top_range,
    }
