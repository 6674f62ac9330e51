"""Findings of the overlap analyses: thresholds and advice from data/overlap_rules.toml.

Each function takes one typed result and returns the findings it supports, with the measured
values as evidence next to the thresholds. Expected gains are ranges computed from the trace's
own numbers (the exposed time that overlap would hide), never constants.
"""

from __future__ import annotations

from typing import Any

from infersight.overlap.results import CommOverlap, CopyOverlap, MultiRankView, RangeOverlap
from infersight.overlap.rules_data import rule
from infersight.rules.finding import Evidence, ExpectedGain, Finding, Location


def human_ns(ns: float | int | None) -> str:
    """A duration for titles: 850 ns, 12.3 µs, 4.56 ms, 1.23 s."""
    if ns is None:
        return "n/a"
    value = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} ns"


def _texts(finding_type: str, metrics: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    spec = rule(finding_type)
    shown = {
        k: human_ns(v) if k.endswith("_ns") and isinstance(v, int | float) else v for k, v in metrics.items()
    }
    return (
        spec["title"].format(**shown),
        [a.format(**shown) for a in spec["advice"]],
        [v.format(**shown) for v in spec["verification"]],
    )


def _where(rank: int | None, device: int) -> str:
    return f"rank {rank} / GPU {device}" if rank is not None else f"GPU {device}"


def copy_findings(result: CopyOverlap) -> list[Finding]:
    """Pageable copies, exposed copies and low copy bandwidth on one device."""
    out: list[Finding] = []
    where = _where(result.rank, result.device)
    location = Location(
        scope="device",
        rank=result.rank,
        device=result.device,
        time_range_ns=result.window.intervals_ns[0] if result.window.intervals_ns else None,
    )
    if result.copy_busy_ns == 0 or result.wall_ns == 0:
        return out
    copy_ratio = result.copy_time_ns / result.wall_ns
    pageable_count = sum(d.pageable_count for d in result.directions)
    pageable_time = sum(d.pageable_time_ns for d in result.directions)
    limits = rule("pageable_copies")
    share = pageable_time / result.copy_time_ns if result.copy_time_ns > 0 else 0.0
    if (
        pageable_count > 0
        and copy_ratio >= limits["min_copy_time_ratio"]
        and share >= limits["min_pageable_share"]
    ):
        metrics = {"pageable_count": pageable_count, "pageable_share": share, "where": where}
        title, advice, verification = _texts("pageable_copies", metrics)
        out.append(
            Finding(
                id=f"pageable_copies/{where}",
                type="pageable_copies",
                title=title,
                location=location,
                severity="warning" if share > 0.1 else "info",
                evidence=[
                    Evidence(metric="pageable_copies", value=pageable_count, threshold=0, comparison=">"),
                    Evidence(metric="pageable_copy_time_ns", value=pageable_time, unit="ns"),
                    Evidence(
                        metric="copy_time_ratio",
                        value=copy_ratio,
                        threshold=limits["min_copy_time_ratio"],
                        comparison=">=",
                    ),
                ],
                advice=advice,
                verification=verification,
                expected_gain=ExpectedGain(
                    low=0.0,
                    high=min(1.0, pageable_time / result.wall_ns),
                    basis="up to the pageable copies' time once they overlap kernels",
                ),
                confidence="high",
                confidence_reason="copy memory kinds are recorded by CUPTI",
            )
        )
    limits = rule("exposed_copies")
    exposed_ratio = result.exposed_ratio or 0.0
    hidden_ratio = result.hidden_ratio or 0.0
    if exposed_ratio >= limits["min_exposed_ratio"] and hidden_ratio < limits["max_hidden_ratio"]:
        metrics = {"exposed_ratio": exposed_ratio, "hidden_ratio": hidden_ratio, "where": where}
        title, advice, verification = _texts("exposed_copies", metrics)
        out.append(
            Finding(
                id=f"exposed_copies/{where}",
                type="exposed_copies",
                title=title,
                location=location,
                evidence=[
                    Evidence(
                        metric="exposed_copy_ratio",
                        value=exposed_ratio,
                        threshold=limits["min_exposed_ratio"],
                        comparison=">=",
                    ),
                    Evidence(
                        metric="hidden_copy_ratio",
                        value=hidden_ratio,
                        threshold=limits["max_hidden_ratio"],
                        comparison="<",
                    ),
                    Evidence(metric="exposed_copy_ns", value=result.exposed_ns, unit="ns"),
                    Evidence(metric="compute_busy_ns", value=result.compute_busy_ns, unit="ns"),
                ],
                advice=advice,
                verification=verification,
                expected_gain=ExpectedGain(
                    low=0.0,
                    high=min(exposed_ratio, result.compute_busy_ns / result.wall_ns),
                    basis="exposed copy time that could run under compute (at most the compute time)",
                ),
                confidence="medium",
                confidence_reason="dependencies between copies and kernels are not in the trace",
            )
        )
    limits = rule("low_copy_bandwidth")
    for d in result.directions:
        if (
            d.link is None
            or d.link_ratio is None
            or d.count == 0
            or d.direction not in ("HtoD", "DtoH", "PtoP")
        ):
            continue
        mean_bytes = d.bytes / d.count
        if d.link_ratio < limits["max_link_ratio"] and mean_bytes >= limits["min_mean_copy_bytes"]:
            metrics = {
                "direction": d.direction,
                "achieved_gb_per_s": d.achieved_gb_per_s or 0.0,
                "link_ratio": d.link_ratio,
                "link_name": d.link.name,
                "link_gb_per_s": d.link.gb_per_s,
                "where": where,
            }
            title, advice, verification = _texts("low_copy_bandwidth", metrics)
            out.append(
                Finding(
                    id=f"low_copy_bandwidth/{d.direction}/{where}",
                    type="low_copy_bandwidth",
                    title=title,
                    location=location,
                    evidence=[
                        Evidence(metric="achieved_gb_per_s", value=d.achieved_gb_per_s, unit="GB/s"),
                        Evidence(
                            metric="link_ratio",
                            value=d.link_ratio,
                            threshold=limits["max_link_ratio"],
                            comparison="<",
                            note=f"{d.link.name}: {d.link.source}",
                        ),
                        Evidence(
                            metric="mean_copy_bytes",
                            value=mean_bytes,
                            unit="B",
                            threshold=limits["min_mean_copy_bytes"],
                            comparison=">=",
                        ),
                    ],
                    advice=advice,
                    verification=verification,
                    expected_gain=ExpectedGain(
                        low=0.0,
                        high=min(1.0, d.exposed_ns / result.wall_ns),
                        basis="exposed time of these copies",
                    ),
                    confidence="medium",
                    confidence_reason="link figure is the nominal per-direction rate",
                )
            )
    return out


def range_findings(row: RangeOverlap, range_regex: str) -> list[Finding]:
    """Load not hidden by compute in a streaming loop range."""
    limits = rule("prefetch_not_hiding")
    if row.load_compute_ratio is None or row.serial_efficiency is None:
        return []
    if (
        row.load_compute_ratio < limits["min_load_compute_ratio"]
        or row.serial_efficiency > limits["max_serial_efficiency"]
    ):
        return []
    per = max(row.instances, 1)
    metrics = {
        "range_name": row.name,
        "copy_ns": row.copy_ns / per,
        "compute_ns": row.compute_ns / per,
        "load_compute_ratio": row.load_compute_ratio,
        "serial_efficiency": row.serial_efficiency,
        "range_regex": range_regex,
    }
    title, advice, verification = _texts("prefetch_not_hiding", metrics)
    best = max(row.copy_ns, row.compute_ns)
    return [
        Finding(
            id=f"prefetch_not_hiding/{row.name}",
            type="prefetch_not_hiding",
            title=title,
            location=Location(scope="range", range_name=row.name),
            evidence=[
                Evidence(
                    metric="load_compute_ratio",
                    value=row.load_compute_ratio,
                    threshold=limits["min_load_compute_ratio"],
                    comparison=">=",
                ),
                Evidence(
                    metric="serial_efficiency",
                    value=row.serial_efficiency,
                    threshold=limits["max_serial_efficiency"],
                    comparison="<=",
                ),
                Evidence(metric="hidden_ratio", value=row.hidden_ratio),
                Evidence(metric="pageable_copies", value=row.pageable_count),
                Evidence(metric="instances", value=row.instances),
            ],
            advice=advice,
            verification=verification,
            expected_gain=ExpectedGain(
                low=0.0,
                high=max(0.0, (row.actual_ns - best) / row.actual_ns) if row.actual_ns else 0.0,
                basis="range GPU span down to max(load, compute) with perfect prefetch (of the range's time)",
            ),
            confidence="medium",
            confidence_reason="ranges are attributed by launch (host ranges) or time (GPU ranges)",
        )
    ]


def comm_findings(result: CommOverlap) -> list[Finding]:
    """Exposed communication, the M5 caveat, and low bus bandwidth of one rank."""
    out: list[Finding] = []
    if result.comm_time_ns == 0 or result.wall_ns == 0:
        return out
    where = _where(result.rank, result.device)
    location = Location(scope="device", rank=result.rank, device=result.device, category="NCCL")
    limits = rule("exposed_comm")
    exposed_ratio, overlap_ratio = result.exposed_ratio or 0.0, result.overlap_ratio or 0.0
    if exposed_ratio >= limits["min_exposed_ratio"] and overlap_ratio < limits["max_overlap_ratio"]:
        title, advice, verification = _texts(
            "exposed_comm", {"exposed_ratio": exposed_ratio, "overlap_ratio": overlap_ratio, "where": where}
        )
        out.append(
            Finding(
                id=f"exposed_comm/{where}",
                type="exposed_comm",
                title=title,
                location=location,
                evidence=[
                    Evidence(
                        metric="exposed_comm_ratio",
                        value=exposed_ratio,
                        threshold=limits["min_exposed_ratio"],
                        comparison=">=",
                    ),
                    Evidence(
                        metric="comm_overlap_ratio",
                        value=overlap_ratio,
                        threshold=limits["max_overlap_ratio"],
                        comparison="<",
                    ),
                    Evidence(metric="exposed_comm_ns", value=result.exposed_ns, unit="ns"),
                ],
                advice=advice,
                verification=verification,
                expected_gain=ExpectedGain(
                    low=0.0, high=exposed_ratio, basis="exposed communication time, if fully overlapped"
                ),
                confidence="medium",
                confidence_reason="whether independent compute exists is not in the trace",
            )
        )
    limits = rule("nccl_ratio")
    if result.m5_nccl_ratio is not None and result.m5_nccl_ratio > limits["m5_threshold"]:
        title, advice, verification = _texts(
            "nccl_ratio", {"m5": result.m5_nccl_ratio, "m5_threshold": limits["m5_threshold"], "where": where}
        )
        algorithms = ", ".join(
            sorted({f"{c.collective} {c.algorithm or '?'}/{c.protocol or '?'}" for c in result.collectives})
        )
        out.append(
            Finding(
                id=f"nccl_ratio/{where}",
                type="nccl_ratio",
                title=title,
                location=location,
                evidence=[
                    Evidence(
                        metric="m5_nccl_ratio",
                        value=result.m5_nccl_ratio,
                        threshold=limits["m5_threshold"],
                        comparison=">",
                    ),
                    Evidence(metric="comm_time_ns", value=result.comm_time_ns, unit="ns"),
                    Evidence(metric="collectives", value=algorithms),
                ],
                advice=advice,
                verification=verification,
                confidence="medium",
                confidence_reason="comm kernel time includes waiting for other ranks",
            )
        )
    limits = rule("low_bus_bandwidth")
    for c in result.collectives:
        if c.busbw_gb_per_s is None or c.link is None or c.link_ratio is None or c.message_bytes is None:
            continue
        if c.link_ratio < limits["max_link_ratio"] and c.message_bytes >= limits["min_mean_message_bytes"]:
            title, advice, verification = _texts(
                "low_bus_bandwidth",
                {
                    "collective": c.collective,
                    "busbw_gb_per_s": c.busbw_gb_per_s,
                    "link_ratio": c.link_ratio,
                    "link_name": c.link.name,
                    "where": where,
                },
            )
            out.append(
                Finding(
                    id=f"low_bus_bandwidth/{c.collective}/{where}",
                    type="low_bus_bandwidth",
                    title=title,
                    location=location,
                    evidence=[
                        Evidence(metric="busbw_gb_per_s", value=c.busbw_gb_per_s, unit="GB/s"),
                        Evidence(
                            metric="link_ratio",
                            value=c.link_ratio,
                            threshold=limits["max_link_ratio"],
                            comparison="<",
                            note=f"{c.link.name}: {c.link.source}",
                        ),
                        Evidence(
                            metric="mean_message_bytes",
                            value=c.message_bytes,
                            unit="B",
                            threshold=limits["min_mean_message_bytes"],
                            comparison=">=",
                        ),
                        Evidence(metric="group_size", value=c.group_size, note=c.size_source or ""),
                    ],
                    advice=advice,
                    verification=verification,
                    confidence="low",
                    confidence_reason="kernel time includes waiting for late ranks",
                )
            )
    return out


def rank_findings(view: MultiRankView) -> list[Finding]:
    """Straggler, collective waits and MoE imbalance across ranks."""
    out: list[Finding] = []
    limits = rule("straggler")
    rows = {r.rank: r for r in view.ranks}
    if view.straggler_rank is not None:
        row = rows[view.straggler_rank]
        late_share = (row.late_count or 0) / view.matched_collectives
        title, advice, verification = _texts(
            "straggler", {"who": row.label, "late_share": late_share, "late_mean_ns": row.late_mean_ns}
        )
        others_wait = sum(r.wait_ns or 0 for r in view.ranks if r.rank != row.rank)
        others_wall = sum(r.wall_ns for r in view.ranks if r.rank != row.rank)
        out.append(
            Finding(
                id=f"straggler/rank {row.rank}",
                type="straggler",
                title=title,
                location=Location(scope="run", rank=row.rank),
                evidence=[
                    Evidence(
                        metric="late_share",
                        value=late_share,
                        threshold=limits["min_late_share"],
                        comparison=">",
                    ),
                    Evidence(metric="late_mean_ns", value=row.late_mean_ns, unit="ns"),
                    Evidence(metric="matched_collectives", value=view.matched_collectives),
                    Evidence(metric="alignment", value=view.alignment_method),
                ],
                advice=advice,
                verification=verification,
                expected_gain=ExpectedGain(
                    low=0.0,
                    high=min(1.0, others_wait / others_wall) if others_wall else 0.0,
                    basis="the other ranks' collective wait time",
                ),
                confidence="medium" if view.matched_collectives >= 10 and not view.waits_rough else "low",
                confidence_reason=f"{view.matched_collectives} collectives matched across ranks"
                + ("; kernels do not pair up one to one, waits are rough" if view.waits_rough else ""),
            )
        )
    limits = rule("collective_wait")
    for r in view.ranks:
        if r.wait_ns is None or r.wall_ns == 0:
            continue
        ratio = r.wait_ns / r.wall_ns
        if ratio >= limits["min_wait_ratio"]:
            title, advice, verification = _texts(
                "collective_wait", {"who": r.label, "wait_ratio": ratio, "wait_ns": r.wait_ns}
            )
            out.append(
                Finding(
                    id=f"collective_wait/rank {r.rank}",
                    type="collective_wait",
                    title=title,
                    severity="info",
                    location=Location(scope="run", rank=r.rank),
                    evidence=[
                        Evidence(
                            metric="wait_ratio",
                            value=ratio,
                            threshold=limits["min_wait_ratio"],
                            comparison=">=",
                        ),
                        Evidence(metric="wait_ns", value=r.wait_ns, unit="ns"),
                    ],
                    advice=advice,
                    verification=verification,
                    expected_gain=ExpectedGain(low=0.0, high=ratio, basis="this rank's collective wait time"),
                    confidence="medium",
                    confidence_reason="clock alignment by collective end times",
                )
            )
    out.extend(_moe_findings(view))
    return out


def _moe_findings(view: MultiRankView) -> list[Finding]:
    limits = rule("moe_imbalance")
    out: list[Finding] = []
    measures = {
        "all-to-all bytes": {r.rank: float(r.all_to_all_bytes) for r in view.ranks if r.all_to_all_bytes},
        "MoE kernel time": {r.rank: float(r.moe_kernel_ns) for r in view.ranks if r.moe_kernel_ns},
    }
    labels = {r.rank: r.label for r in view.ranks}
    for metric, values in measures.items():
        if len(values) < 2 or len(values) < len(view.ranks):
            continue
        mean = sum(values.values()) / len(values)
        top = max(values, key=lambda k: values[k])
        imbalance = values[top] / mean
        if imbalance < limits["min_imbalance"]:
            continue
        title, advice, verification = _texts(
            "moe_imbalance", {"metric": metric, "imbalance": imbalance, "who": labels[top]}
        )
        out.append(
            Finding(
                id=f"moe_imbalance/{metric}",
                type="moe_imbalance",
                title=title,
                location=Location(scope="run", rank=top),
                evidence=[
                    Evidence(
                        metric=f"{metric} max/mean",
                        value=imbalance,
                        threshold=limits["min_imbalance"],
                        comparison=">=",
                    ),
                    Evidence(
                        metric=f"{metric} per rank",
                        value=", ".join(f"{k}: {v:.3g}" for k, v in values.items()),
                    ),
                ],
                advice=advice,
                verification=verification,
                confidence="low" if view.missing_ranks else "medium",
                confidence_reason="only some ranks are present"
                if view.missing_ranks
                else "all ranks present",
            )
        )
    return out
